package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;

/**
 * Ref LDM-Seg-n's three-branch classifier-free guidance: rows (text, image, unconditioned) of one
 * UNet call's prediction, g_t on the instruction and g_q on the query image (InstructPix2Pix's
 * rule); on the backend (what the pipeline uses) and as a host function with the same rounding.
 */
public final class Guidance {
    private Guidance() {
    }

    /** Guidance applies only when both scales are at least 1 (else the UNet runs one unguided row). */
    public static boolean applies(float instructionScale, float imageScale) {
        return instructionScale >= 1f && imageScale >= 1f;
    }


    /** e = e_uncond + g_t (e_text - e_image) + g_q (e_image - e_uncond), rows (text, image, uncond). */
    public static float[] combine(float[] raw, int n, float gt, float gq) {
        float[] e = new float[n];
        for (int i = 0; i < n; i++) {
            float text = raw[i], image = raw[n + i], uncond = raw[2 * n + i];
            e[i] = uncond + gt * (text - image) + gq * (image - uncond);
        }
        return e;
    }

    /** The same on the backend: raw is [3, h, w, c] (rows text, image, uncond), the result [1, h, w, c]. */
    public static Tensor combine(Backend be, Tensor raw, float gt, float gq) {
        Tensor text = be.sliceBatch(raw, 0, 1), image = be.sliceBatch(raw, 1, 1), uncond = be.sliceBatch(raw, 2, 1);
        Tensor byText = be.axpby(1f, text, -1f, image), byImage = be.axpby(1f, image, -1f, uncond);
        return be.axpby(1f, be.axpby(1f, uncond, gt, byText), gq, byImage);
    }
}
