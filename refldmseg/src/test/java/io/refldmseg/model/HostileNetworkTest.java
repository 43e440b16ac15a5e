package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.Models;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/** The networks check every tensor they take: wrong ranks, widths and configs fail at construction naming the tensor or field. */
class HostileNetworkTest {
    static final Backend be = new CpuBackend();
    static Models.Loaded<UNetConfig> unet;
    static Models.Loaded<VaeConfig> vae;
    static Models.Loaded<ClipConfig> clip;

    @BeforeAll
    static void load() {
        unet = Models.unet(Fixtures.file("unet_diffusers.safetensors"));
        vae = Models.vae(Fixtures.file("vae_diffusers.safetensors"));
        clip = Models.clip(Fixtures.file("alphaclip_visual.safetensors"));
    }

    @AfterAll
    static void close() {
        unet.close();
        vae.close();
        clip.close();
    }

    /** The weights with {@code name} seen under another shape of the same element count. */
    static ModelWeights reshaped(ModelWeights w, String name, long... shape) {
        Map<String, TensorData> t = new TreeMap<>(w.tensors());
        TensorData old = t.get(name);
        t.put(name, old.reshaped(shape));
        return new ModelWeights(w.source(), w.layout(), t, List.of());
    }

    static void assertRefused(Runnable build, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, build::run);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
    }

    @Test
    void aConvWeightOfTheWrongRankIsRefusedNamingIt() {
        TensorData convIn = unet.weights().get("conv_in.weight");
        long out = convIn.shape()[0], rest = convIn.numel() / out;
        assertRefused(() -> new UNet2DConditionModel(unet.config(), reshaped(unet.weights(), "conv_in.weight", out, rest), be), "conv_in.weight", "expected [");
        assertRefused(() -> new UNet2DConditionModel(unet.config(), reshaped(unet.weights(), "conv_in.weight", convIn.numel()), be), "conv_in.weight");
        String q = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight";
        TensorData k = unet.weights().get(q);
        assertRefused(() -> new UNet2DConditionModel(unet.config(), reshaped(unet.weights(), q, k.shape()[1], k.shape()[0]), be), q);
        TensorData ln = clip.weights().get("ln_pre.weight");
        assertRefused(() -> new AlphaClipVisionTower(clip.config(), reshaped(clip.weights(), "ln_pre.weight", 1, ln.numel()), be), "ln_pre.weight");
        TensorData dec = vae.weights().get("decoder.conv_in.weight");
        assertRefused(() -> new AutoencoderKL(vae.config(), reshaped(vae.weights(), "decoder.conv_in.weight",
                dec.shape()[0], dec.shape()[1] * 3, 3, 1), be), "decoder.conv_in.weight");
    }

    @Test
    void configsThatDoNotFitTheWeightsAreRefused() {
        UNetConfig c = unet.config();
        UNetConfig badHeads = new UNetConfig(c.inChannels(), c.outChannels(), c.blockOutChannels(), c.downBlockTypes(), c.upBlockTypes(),
                c.layersPerBlock(), c.normNumGroups(), c.normEps(), c.crossAttentionDim(), java.util.Collections.nCopies(c.levels(), 7),
                c.encoderHidDim(), c.useLinearProjection(), c.flipSinToCos(), c.freqShift());
        assertRefused(() -> new UNet2DConditionModel(badHeads, unet.weights(), be), "heads");
        UNetConfig badGroups = new UNetConfig(c.inChannels(), c.outChannels(), c.blockOutChannels(), c.downBlockTypes(), c.upBlockTypes(),
                c.layersPerBlock(), 7, c.normEps(), c.crossAttentionDim(), c.attentionHeads(),
                c.encoderHidDim(), c.useLinearProjection(), c.flipSinToCos(), c.freqShift());
        assertRefused(() -> new UNet2DConditionModel(badGroups, unet.weights(), be), "groups");
        UNetConfig moreInputs = new UNetConfig(8, c.outChannels(), c.blockOutChannels(), c.downBlockTypes(), c.upBlockTypes(),
                c.layersPerBlock(), c.normNumGroups(), c.normEps(), c.crossAttentionDim(), c.attentionHeads(),
                c.encoderHidDim(), c.useLinearProjection(), c.flipSinToCos(), c.freqShift());
        assertRefused(() -> new UNet2DConditionModel(moreInputs, unet.weights(), be), "conv_in.weight");
        VaeConfig v = vae.config();
        VaeConfig latents = new VaeConfig(v.inChannels(), v.outChannels(), v.blockOutChannels(), v.layersPerBlock(), 3,
                v.normNumGroups(), v.scalingFactor());
        assertRefused(() -> new AutoencoderKL(latents, vae.weights(), be), "conv");
        ClipConfig k = clip.config();
        assertRefused(() -> new AlphaClipVisionTower(new ClipConfig(k.inputResolution(), k.patchSize(), k.width(), k.layers(), 7),
                clip.weights(), be), "heads");
    }
}
