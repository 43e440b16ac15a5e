package io.refldmseg.pipeline;

/**
 * Ref LDM-Seg-n's three-branch classifier-free guidance as a pure function, on the host: rows
 * (text, image, unconditioned) of one UNet call's prediction, g_t on the instruction and g_q on
 * the query image (InstructPix2Pix's rule).
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
}
