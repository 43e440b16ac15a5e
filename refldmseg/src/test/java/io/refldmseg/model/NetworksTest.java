package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Golden;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.TestBackend;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.Models;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static io.refldmseg.engine.Golden.assertClose;
import static io.refldmseg.engine.Golden.tolerance;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The three networks against PyTorch (unet_io, vae_io, clip_io), every stored output and
 * intermediate within 10x the fp32-vs-fp64 error recorded for that case.
 */
class NetworksTest {
    static final Backend be = TestBackend.create();
    static Models.Loaded<UNetConfig> unetW, unet8W;
    static Models.Loaded<VaeConfig> vaeW;
    static Models.Loaded<ClipConfig> clipW;
    static UNet2DConditionModel unet, unet8;
    static AutoencoderKL vae;
    static AlphaClipVisionTower clip;

    @BeforeAll
    static void load() {
        unetW = Models.unet(Fixtures.file("unet_diffusers.safetensors"));
        unet8W = Models.unet(Fixtures.file("unet8_mp_rank_00_model_states.pt")); // bf16 DeepSpeed file, same weights
        vaeW = Models.vae(Fixtures.file("vae_diffusers.safetensors"));
        clipW = Models.clip(Fixtures.file("alphaclip_visual.safetensors"));
        unet = new UNet2DConditionModel(unetW.config(), unetW.weights(), be);
        // the DeepSpeed file carries no config: use the diffusers twin's metadata config for groups/heads
        try (var twin = Models.unet(Fixtures.file("unet8_diffusers.safetensors"))) {
            unet8 = new UNet2DConditionModel(twin.config(), unet8W.weights(), be);
        }
        vae = new AutoencoderKL(vaeW.config(), vaeW.weights(), be);
        clip = new AlphaClipVisionTower(clipW.config(), clipW.weights(), be);
    }

    @AfterAll
    static void close() {
        unetW.close();
        unet8W.close();
        vaeW.close();
        clipW.close();
    }

    static Tensor image(TensorData t) {
        return Golden.image(be, t);
    }

    static Tensor plain(TensorData t) {
        return Golden.plain(be, t);
    }

    /** Compares a channels-last result with a stored NCHW (or plain) reference. */
    static void check(String what, TensorData ref, Tensor got, double atol) {
        float[] expected = ref.rank() == 4 ? Golden.nhwc(ref) : ref.toFloats();
        if (ref.rank() == 4) assertArrayEquals(new int[]{ref.dim(0), ref.dim(2), ref.dim(3), ref.dim(1)}, got.shape(), what);
        else assertEquals(ref.numel(), got.numel(), what);
        assertClose(what, expected, be.toHost(got), atol);
    }

    static float[] timesteps(TensorData t) {
        long[] l = t.toLongs();
        float[] f = new float[l.length];
        for (int i = 0; i < l.length; i++) f[i] = l[i];
        return f;
    }

    @Test
    void unetCases() {
        try (TensorFile io = TensorFile.open(Fixtures.file("unet_io.safetensors"))) {
            Tensor sample = image(io.tensor("sample")), ehs = plain(io.tensor("encoder_hidden_states"));
            Tensor mask = plain(io.tensor("mask")), allZeroRow = plain(io.tensor("mask_with_allzero_row"));
            String[][] cases = {{"t0_nomask", null}, {"t500_nomask", null}, {"t0_mask", "m"}, {"t500_mask", "m"},
                    {"t0_t951_mask_allzero_row", "z"}};
            for (String[] c : cases) {
                Tensor m = c[1] == null ? null : c[1].equals("m") ? mask : allZeroRow;
                Map<String, Tensor> inter = new HashMap<>();
                Tensor out = unet.forward(sample, timesteps(io.tensor(c[0] + ".timestep")), ehs, m, inter::put);
                double tol = tolerance("unet_io/" + c[0]);
                check(c[0], io.tensor(c[0] + ".out"), out, tol);
                if (c[0].equals("t500_mask")) {
                    for (String key : io.tensors().keySet()) {
                        if (!key.startsWith("t500_mask.inter.")) continue;
                        String name = key.substring("t500_mask.inter.".length());
                        assertTrue(inter.containsKey(name), "intermediate " + name + " recorded");
                        check(key, io.tensor(key), inter.get(name), tol);
                    }
                }
            }
            Tensor out8 = unet8.forward(image(io.tensor("sample8")), timesteps(io.tensor("unet8_t951_t1_mask.timestep")), ehs, mask);
            check("unet8_t951_t1_mask", io.tensor("unet8_t951_t1_mask.out"), out8, tolerance("unet_io/unet8_t951_t1_mask"));
        }
    }

    /** The -n loop's context projected once and reused at two timesteps: the bits of projecting it in every forward. */
    @Test
    void contextProjectedOnceGivesTheSameBits() {
        try (TensorFile io = TensorFile.open(Fixtures.file("unet_io.safetensors"))) {
            Tensor sample = image(io.tensor("sample")), ehs = plain(io.tensor("encoder_hidden_states")), mask = plain(io.tensor("mask"));
            UNet2DConditionModel.ContextProjections projected = unet.contextProjections(ehs);
            for (String c : new String[]{"t500_mask", "t0_mask"}) {
                float[] t = timesteps(io.tensor(c + ".timestep"));
                Map<String, Tensor> inter = new HashMap<>();
                Tensor reused = unet.forward(sample, t, projected, mask, inter::put,
                        new AttentionContext(AttentionContext.Network.UNET, t[0], 0,
                                java.util.Collections.nCopies(sample.dim(0), AttentionContext.Branch.TEXT), 1, ehs.dim(1), null));
                assertArrayEquals(be.toHost(unet.forward(sample, t, ehs, mask)), be.toHost(reused), c);
                check(c, io.tensor(c + ".out"), reused, tolerance("unet_io/" + c));
                assertTrue(inter.containsKey("encoder_hid_proj"), "the probe still sees encoder_hid_proj");
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> unet8.forward(image(io.tensor("sample8")),
                    new float[]{0}, projected, mask, Probe.NONE, AttentionContext.outside(AttentionContext.Network.UNET)));
            assertTrue(e.getMessage().contains("another UNet"), e.getMessage());
        }
    }

    /** The second forward runs on arrays recycled from the first (stale values in them): the same bits. */
    @Test
    void recycledBuffersGiveTheSameBits() {
        try (TensorFile io = TensorFile.open(Fixtures.file("unet_io.safetensors"))) {
            Tensor sample = image(io.tensor("sample")), ehs = plain(io.tensor("encoder_hidden_states")), mask = plain(io.tensor("mask"));
            float[] t = timesteps(io.tensor("t500_mask.timestep"));
            float[] first = be.toHost(unet.forward(sample, t, ehs, mask));
            float[] second = be.toHost(unet.forward(sample, t, ehs, mask));
            assertArrayEquals(first, second);
        }
    }

    @Test
    void vaeEncodeDecodeSquareAndNonSquare() {
        try (TensorFile io = TensorFile.open(Fixtures.file("vae_io.safetensors"))) {
            Map<String, Tensor> inter = new HashMap<>();
            AutoencoderKL.Posterior post = vae.encode(image(io.tensor("encode.x")), inter::put);
            double tolMean = tolerance("vae_io/encode.mean");
            check("encode.mean", io.tensor("encode.mean"), post.mean(), tolMean);
            check("encode.logvar", io.tensor("encode.logvar"), post.logvar(), tolerance("vae_io/encode.logvar"));
            for (String key : io.tensors().keySet())
                if (key.startsWith("encode.inter.")) check(key, io.tensor(key), inter.get(key.substring("encode.inter.".length())), tolMean);

            inter.clear();
            Tensor dec = vae.decode(image(io.tensor("decode.z")), inter::put);
            double tolDec = tolerance("vae_io/decode");
            check("decode.out", io.tensor("decode.out"), dec, tolDec);
            for (String key : io.tensors().keySet())
                if (key.startsWith("decode.inter.")) check(key, io.tensor(key), inter.get(key.substring("decode.inter.".length())), tolDec);

            check("decode_nonsquare", io.tensor("decode_nonsquare.out"), vae.decode(image(io.tensor("decode_nonsquare.z"))),
                    tolerance("vae_io/decode_nonsquare"));
            AutoencoderKL.Posterior ns = vae.encode(image(io.tensor("encode_nonsquare.x")));
            check("encode_nonsquare.mean", io.tensor("encode_nonsquare.mean"), ns.mean(), tolMean);
            check("encode_nonsquare.logvar", io.tensor("encode_nonsquare.logvar"), ns.logvar(), tolerance("vae_io/encode.logvar"));
        }
    }

    @Test
    void alphaClipTokensAndBlocks() {
        try (TensorFile io = TensorFile.open(Fixtures.file("clip_io.safetensors"))) {
            Map<String, Tensor> inter = new HashMap<>();
            Tensor tokens = clip.forward(image(io.tensor("x")), image(io.tensor("alpha")), inter::put);
            double tol = tolerance("clip_io/tokens_all");
            check("tokens_all", io.tensor("tokens_all"), tokens, tol);
            for (String key : io.tensors().keySet())
                if (key.startsWith("inter.")) check(key, io.tensor(key), inter.get(key.substring("inter.".length())), tol);
        }
    }

    @Test
    void badInputShapesAreClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> unet.forward(be.tensor(new float[2 * 16 * 16 * 8], 2, 16, 16, 8), new float[]{0}, be.tensor(new float[2 * 4 * 64], 2, 4, 64), null));
        assertTrue(e.getMessage().contains("UNet expects [B, H, W, 4]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> vae.encode(be.tensor(new float[12 * 12 * 3], 1, 12, 12, 3)));
        assertTrue(e.getMessage().contains("multiple of 8"), e.getMessage());
    }
}
