package io.refldmseg.pipeline;

/**
 * Ref LDM-Seg's output alignment: a binary mask as a 3-channel image the VAE can carry, and back.
 * Background is (b, a, (a+b)/2), foreground (a, b, (a+b)/2) with a = -1, b = 1; the augmented
 * variant mixes the image in: target = (1 - alpha) PM + alpha x. Decoding removes alpha x and
 * compares channels 1 (foreground) and 0 (background); ties are background.
 */
public final class PseudoMask {
    public static final float A = -1f, B = 1f;

    private PseudoMask() {
    }

    /** Colour of a label: row 0 background, row 1 foreground. */
    public static float[][] colours() {
        return new float[][]{{B, A, (A + B) / 2}, {A, B, (A + B) / 2}};
    }

    /** mask [H*W] in {0,1}, image [H*W*3] in [-1,1] (HWC) -> target [H*W*3] (HWC). */
    public static float[] target(float[] mask, float[] image, float alpha) {
        float[][] col = colours();
        float[] out = new float[mask.length * 3];
        for (int i = 0; i < mask.length; i++) {
            float[] c = col[mask[i] > 0.5f ? 1 : 0];
            for (int ch = 0; ch < 3; ch++) out[i * 3 + ch] = (1 - alpha) * c[ch] + alpha * image[i * 3 + ch];
        }
        return out;
    }

    /** logits [H*W*3] (HWC, image term already removed) -> mask [H*W] (1 where fg beats bg). */
    public static byte[] decide(float[] logits) {
        byte[] m = new byte[logits.length / 3];
        for (int i = 0; i < m.length; i++) m[i] = (byte) (logits[i * 3 + 1] > logits[i * 3] ? 1 : 0);
        return m;
    }

    /**
     * Several categories on one query (the paper's multi-class rule): with margins m_c =
     * L_c[1] - L_c[0], p_c = exp(m_c) / (1 + sum_i exp(m_i)), background 1 / (1 + sum). Computed
     * as a softmax over (0, m_1, ..., m_C) with the maximum subtracted, so large margins never
     * overflow. Returns probabilities [(C+1) x P] (row 0 background) and writes the argmax label
     * (0 = background, ties to the lower label) into {@code labels}.
     */
    public static float[][] categories(float[][] margins, byte[] labels) {
        int cats = margins.length, pixels = labels.length;
        float[][] prob = new float[cats + 1][pixels];
        for (int p = 0; p < pixels; p++) {
            double max = 0;
            int best = 0;
            for (int c = 0; c < cats; c++) {
                if (margins[c][p] > max) {
                    max = margins[c][p];
                    best = c + 1;
                }
            }
            double sum = Math.exp(-max);
            for (int c = 0; c < cats; c++) sum += Math.exp(margins[c][p] - max);
            prob[0][p] = (float) (Math.exp(-max) / sum);
            for (int c = 0; c < cats; c++) prob[c + 1][p] = (float) (Math.exp(margins[c][p] - max) / sum);
            labels[p] = (byte) best;
        }
        return prob;
    }
}
