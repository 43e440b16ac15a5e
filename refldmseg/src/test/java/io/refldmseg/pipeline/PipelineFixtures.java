package io.refldmseg.pipeline;

import io.refldmseg.engine.TestBackend;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shared pieces of the pipeline tests: the bundled tiny models and the pipe_* fixture inputs. */
final class PipelineFixtures {
    private PipelineFixtures() {
    }

    static RefLdmSeg.Checkpoints tinyF() {
        return new RefLdmSeg.Checkpoints(Fixtures.file("unet_diffusers.safetensors"), Fixtures.file("vae_diffusers.safetensors"),
                Fixtures.file("alphaclip_visual.safetensors"));
    }

    static RefLdmSeg.Checkpoints tinyN() {
        return new RefLdmSeg.Checkpoints(Fixtures.file("unet8_diffusers.safetensors"), Fixtures.file("vae_diffusers.safetensors"),
                Fixtures.file("alphaclip_visual.safetensors"));
    }

    static RefLdmSeg open(RefLdmSeg.Checkpoints c) {
        return RefLdmSeg.load(c, TestBackend.create(), s -> {
        });
    }

    static RgbImage image(TensorData hwc, int index) {
        int h = hwc.dim(-3), w = hwc.dim(-2);
        byte[] all = hwc.contiguousBytes().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        return new RgbImage(w, h, java.util.Arrays.copyOfRange(all, index * h * w * 3, (index + 1) * h * w * 3));
    }

    static List<Support> supports(TensorFile f) {
        TensorData sx = f.tensor("support_u8_hwc"), sy = f.tensor("sy");
        byte[] masks = sy.contiguousBytes().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        int h = sy.dim(2), w = sy.dim(3);
        List<Support> out = new ArrayList<>();
        for (int i = 0; i < sx.dim(0); i++)
            out.add(new Support(image(sx, i), new LabelMap(w, h, java.util.Arrays.copyOfRange(masks, i * h * w, (i + 1) * h * w))));
        return out;
    }

    /** Masks agree wherever the reference logit margin is decisive (|L1 - L0| > 1e-3). */
    static void assertMasksAgree(String what, float[] refLogits, float[] refMask, float[] mask) {
        int pixels = refMask.length, compared = 0;
        for (int p = 0; p < pixels; p++) {
            float margin = refLogits[pixels + p] - refLogits[p];
            if (Math.abs(margin) <= 1e-3) continue;
            compared++;
            assertEquals(refMask[p], mask[p], what + ": mask differs at pixel " + p + " (margin " + margin + ")");
        }
        assertTrue(compared > pixels * 0.9, what + ": most pixels decisive");
    }
}
