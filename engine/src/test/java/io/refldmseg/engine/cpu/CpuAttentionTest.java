package io.refldmseg.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Attention at shapes the small golden fixture does not reach: several query panels with a ragged
 * last one, keys past one K slice, head dims whose last row group is short or long, a key mask;
 * against a double-precision reference.
 */
class CpuAttentionTest {
    static final Parallel PAR = new Parallel(CpuBackend.cores());

    @Test
    void matchesADoubleReference() {
        Random r = new Random(11);
        // lq, lk, channels, heads: head dims 40, 19 and 19 take the transposed products, 64, 16 and 64 the direct ones
        // (100 queries: blocks of 48, 48 and 4)
        int[][] shapes = {{70, 300, 80, 2}, {33, 257, 64, 1}, {5, 7, 38, 2}, {40, 12, 19, 1}, {9, 700, 32, 2}, {100, 300, 128, 2}};
        for (int[] s : shapes) {
            for (boolean masked : new boolean[]{false, true}) {
                int batch = 2, lq = s[0], lk = s[1], ch = s[2], heads = s[3], d = ch / heads;
                float[] q = gaussian(r, batch * lq * ch), k = gaussian(r, batch * lk * ch), v = gaussian(r, batch * lk * ch);
                float[] mask = null;
                if (masked) {
                    mask = new float[batch * lk];
                    for (int i = 0; i < mask.length; i++) mask[i] = r.nextInt(3) == 0 ? 0f : 1f;
                }
                float[] out = new float[batch * lq * ch];
                CpuAttention.run(PAR, q, k, v, batch, lq, lk, ch, heads, mask, out);
                double worst = 0;
                for (int b = 0; b < batch; b++)
                    for (int h = 0; h < heads; h++)
                        for (int i = 0; i < lq; i++) {
                            double[] p = new double[lk];
                            double max = Double.NEGATIVE_INFINITY, sum = 0;
                            for (int j = 0; j < lk; j++) {
                                double dot = 0;
                                for (int dd = 0; dd < d; dd++) dot += (double) q[(b * lq + i) * ch + h * d + dd] * k[(b * lk + j) * ch + h * d + dd];
                                p[j] = dot / Math.sqrt(d) + (mask == null ? 0 : (1 - mask[b * lk + j]) * -10000.0);
                                max = Math.max(max, p[j]);
                            }
                            for (int j = 0; j < lk; j++) sum += p[j] = Math.exp(p[j] - max);
                            for (int dd = 0; dd < d; dd++) {
                                double want = 0;
                                for (int j = 0; j < lk; j++) want += p[j] / sum * v[(b * lk + j) * ch + h * d + dd];
                                worst = Math.max(worst, Math.abs(want - out[(b * lq + i) * ch + h * d + dd]));
                            }
                        }
                // values are O(1): fp32 rounding of scores, exp and sums stays near 1e-6
                assertTrue(worst < 1e-5, lq + "x" + lk + "x" + ch + "/" + heads + (masked ? " masked" : "") + ": max abs error " + worst);
            }
        }
    }

    /** Each sample of a batch gets the bits it gets alone, with and without a key mask, on both kinds of products. */
    @Test
    void aBatchGivesEachSampleItsOwnBits() {
        Random r = new Random(12);
        for (int[] s : new int[][]{{70, 300, 80, 2}, {100, 300, 128, 2}, {9, 700, 32, 2}}) {
            int batch = 3, lq = s[0], lk = s[1], ch = s[2], heads = s[3];
            float[] q = gaussian(r, batch * lq * ch), k = gaussian(r, batch * lk * ch), v = gaussian(r, batch * lk * ch);
            float[] mask = new float[batch * lk];
            for (int i = 0; i < mask.length; i++) mask[i] = r.nextInt(3) == 0 ? 0f : 1f;
            for (float[] m : new float[][]{null, mask}) {
                float[] all = new float[batch * lq * ch];
                CpuAttention.run(PAR, q, k, v, batch, lq, lk, ch, heads, m, all);
                for (int b = 0; b < batch; b++) {
                    float[] one = new float[lq * ch];
                    CpuAttention.run(PAR, java.util.Arrays.copyOfRange(q, b * lq * ch, (b + 1) * lq * ch),
                            java.util.Arrays.copyOfRange(k, b * lk * ch, (b + 1) * lk * ch), java.util.Arrays.copyOfRange(v, b * lk * ch, (b + 1) * lk * ch),
                            1, lq, lk, ch, heads, m == null ? null : java.util.Arrays.copyOfRange(m, b * lk, (b + 1) * lk), one);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(java.util.Arrays.copyOfRange(all, b * lq * ch, (b + 1) * lq * ch), one,
                            lq + "x" + lk + "x" + ch + "/" + heads + (m == null ? "" : " masked") + ", sample " + b);
                }
            }
        }
    }

    private static float[] gaussian(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }
}
