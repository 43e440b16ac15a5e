package io.refldmseg.pipeline;

import io.refldmseg.engine.Golden;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.TensorFile;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static io.refldmseg.engine.Golden.assertClose;
import static io.refldmseg.engine.Golden.tolerance;
import static io.refldmseg.pipeline.PipelineFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** The four pipeline fixtures through the public API, every stored intermediate at its honest tolerance. */
class PipelineFixturesTest {

    static void check(TensorFile f, Map<String, HostTensor> got, String name, String key, double atol) {
        HostTensor t = got.get(key);
        assertNotNull(t, key + " kept");
        assertArrayEquals(f.tensor(name).shape(), t.shape(), name + " shape");
        assertClose(name, f.tensor(name).toFloats(), t.data(), atol);
    }

    static void check(TensorFile f, Map<String, HostTensor> got, String name, double atol) {
        check(f, got, name, name, atol);
    }

    @Test
    void refLdmSegF() {
        try (RefLdmSeg seg = open(tinyF())) {
            assertEquals(RefLdmSeg.Architecture.F, seg.architecture());
            for (String pipe : new String[]{"pipe_f1", "pipe_f2"}) {
                try (TensorFile f = TensorFile.open(Fixtures.file(pipe + ".safetensors"))) {
                    float alpha = f.tensor("mask_alpha").toFloats()[0];
                    Options o = Options.defaults().withMaskAlpha(alpha).withIgnoreLabel(255).withKeepTensors(true);
                    Result r = seg.segment(image(f.tensor("query_u8_hwc"), 0), supports(f), o);
                    Map<String, HostTensor> t = r.tensors();
                    double tokTol = tolerance(pipe + "/prompt_embeds");
                    check(f, t, "sx224", tolerance("ops/bilinear.img224"));
                    check(f, t, "alpha224", 0);
                    check(f, t, "sy16", 0);
                    check(f, t, "symask", 0);
                    check(f, t, "tokens_all", tokTol);
                    check(f, t, "prompt_embeds", tokTol);
                    double latTol = tolerance(pipe + "/latent");
                    check(f, t, "latent", latTol);
                    check(f, t, "latent_mean", latTol / 0.18215);
                    check(f, t, "unet_pred", tolerance(pipe + "/unet_pred"));
                    check(f, t, "logits", tolerance(pipe + "/logits"));
                    assertMasksAgree(pipe, f.tensor("logits").toFloats(), f.tensor("mask").toFloats(), t.get("mask").data());

                    // the official path: a sampled posterior with the stored eps
                    Options s = o.withPosterior(Options.Posterior.SAMPLE).withNoise(new NoiseInputs(null, null, f.tensor("sampled.eps").toFloats()));
                    Map<String, HostTensor> st = seg.segment(image(f.tensor("query_u8_hwc"), 0), supports(f), s).tensors();
                    check(f, st, "sampled.latent", "latent", latTol);
                    check(f, st, "sampled.unet_pred", "unet_pred", tolerance(pipe + "/unet_pred"));
                    check(f, st, "sampled.logits", "logits", tolerance(pipe + "/sampled.logits"));
                    assertMasksAgree(pipe + " sampled", f.tensor("sampled.logits").toFloats(), f.tensor("sampled.mask").toFloats(), st.get("mask").data());
                }
            }
        }
    }

    @Test
    void pseudoMaskTarget() {
        try (RefLdmSeg seg = open(tinyF()); TensorFile f = TensorFile.open(Fixtures.file("pipe_f1.safetensors"))) {
            float[][] col = PseudoMask.colours();
            float[] ref = f.tensor("pm.pseudo_mask_corner_colors").toFloats();
            assertArrayEquals(ref, new float[]{col[0][0], col[0][1], col[0][2], col[1][0], col[1][1], col[1][2]});
            float alpha = f.tensor("mask_alpha").toFloats()[0];
            float[] label = f.tensor("pm.label").toFloats();
            RgbImage q = image(f.tensor("query_u8_hwc"), 0);
            float[] x = new float[q.rgb().length];
            for (int i = 0; i < x.length; i++) x[i] = ((q.rgb()[i] & 0xff) - 127.5f) / 127.5f;
            float[] target = PseudoMask.target(label, x, alpha);
            float[] latent = seg.encodeLatent(target, q.width(), q.height());
            assertClose("pm.target_latent_mode_scaled", f.tensor("pm.target_latent_mode_scaled").toFloats(), latent,
                    tolerance("pipe_f1/latent"));
        }
    }

    @Test
    void refLdmSegN() {
        try (RefLdmSeg seg = open(tinyN())) {
            assertEquals(RefLdmSeg.Architecture.N, seg.architecture());
            for (String pipe : new String[]{"pipe_n_ddpm", "pipe_n_ddim"}) {
                try (TensorFile f = TensorFile.open(Fixtures.file(pipe + ".safetensors"))) {
                    boolean ddpm = pipe.endsWith("ddpm");
                    Options o = Options.defaults().withMaskAlpha(f.tensor("mask_alpha").toFloats()[0]).withIgnoreLabel(255)
                            .withKeepTensors(true).withSteps(20)
                            .withScheduler(ddpm ? Options.SchedulerKind.DDPM : Options.SchedulerKind.DDIM)
                            .withGuidance(f.tensor("guidance_scale").toFloats()[0], f.tensor("image_guidance_scale").toFloats()[0])
                            .withNoise(new NoiseInputs(f.tensor("init_noise").toFloats(), ddpm ? f.tensor("step_noise").toFloats() : null, null));
                    Map<String, HostTensor> t = seg.segment(image(f.tensor("query_u8_hwc"), 0), supports(f), o).tensors();
                    check(f, t, "image_latents", tolerance(pipe + "/image_latents"));
                    check(f, t, "prompt_embeds", tolerance(pipe + "/prompt_embeds"));
                    check(f, t, "null_prompt", tolerance(pipe + "/null_prompt"));
                    check(f, t, "symask", 0);
                    // every step, at the tolerance recorded for that step or the largest recorded one
                    double rawTol = 0, latTol = 0;
                    for (int i : new int[]{0, 1, 10, 19}) {
                        rawTol = Math.max(rawTol, tolerance(pipe + "/step_unet_raw[" + i + "]"));
                        latTol = Math.max(latTol, tolerance(pipe + "/step_latents_out[" + i + "]"));
                    }
                    check(f, t, "step_unet_raw", rawTol);
                    // guided = uncond + g_t (text - image) + g_q (image - uncond): each raw error enters at most 1 + 2 g_t + 2 g_q times
                    float gt = f.tensor("guidance_scale").toFloats()[0], gq = f.tensor("image_guidance_scale").toFloats()[0];
                    check(f, t, "step_eps_guided", rawTol * (1 + 2 * gt + 2 * gq));
                    check(f, t, "step_latents_out", latTol);
                    check(f, t, "final_latents", tolerance(pipe + "/final_latents"));
                    check(f, t, "logits", tolerance(pipe + "/logits"));
                    assertMasksAgree(pipe, f.tensor("logits").toFloats(), f.tensor("mask").toFloats(), t.get("mask").data());
                }
            }
        }
    }
}
