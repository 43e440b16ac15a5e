package io.refldmseg.engine.cpu;

import io.refldmseg.engine.Backend;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GroupNorm (and its fused SiLU) against a double-precision reference on shapes the fixtures do
 * not reach: a channel tail past the last vector, pixels in several chunks and a partial block,
 * a batch, and a mean far from zero (the variance comes from E[x^2] - E[x]^2 in double).
 */
class GroupNormTest {
    @Test
    void matchesADoubleReference() {
        Random r = new Random(31);
        int[][] shapes = {{2, 23, 31, 40, 8}, {1, 40, 40, 37, 1}, {1, 3, 5, 64, 32}}; // n, h, w, c, groups
        Backend be = new CpuBackend(CpuBackend.cores());
        for (int[] s : shapes) {
            int n = s[0], pixels = s[1] * s[2], c = s[3], groups = s[4], cpg = c / groups;
            for (float offset : new float[]{0f, 100f}) {
                float[] x = new float[n * pixels * c], g = new float[c], b = new float[c];
                for (int i = 0; i < x.length; i++) x[i] = offset + (float) r.nextGaussian();
                for (int i = 0; i < c; i++) {
                    g[i] = 1 + 0.2f * (float) r.nextGaussian();
                    b[i] = 0.1f * (float) r.nextGaussian();
                }
                for (boolean silu : new boolean[]{false, true}) {
                    float[] y = be.toHost(be.groupNorm(be.tensor(x, n, s[1], s[2], c), groups, be.tensor(g, c), be.tensor(b, c), 1e-6f, silu));
                    double worst = 0;
                    for (int bi = 0; bi < n; bi++)
                        for (int gi = 0; gi < groups; gi++) {
                            double sum = 0, sq = 0, count = (double) pixels * cpg;
                            for (int p = 0; p < pixels; p++)
                                for (int ch = gi * cpg; ch < (gi + 1) * cpg; ch++) sum += x[(bi * pixels + p) * c + ch];
                            double mean = sum / count;
                            for (int p = 0; p < pixels; p++)
                                for (int ch = gi * cpg; ch < (gi + 1) * cpg; ch++) {
                                    double d = x[(bi * pixels + p) * c + ch] - mean;
                                    sq += d * d;
                                }
                            double rstd = 1 / Math.sqrt(sq / count + 1e-6);
                            for (int p = 0; p < pixels; p++)
                                for (int ch = gi * cpg; ch < (gi + 1) * cpg; ch++) {
                                    int at = (bi * pixels + p) * c + ch;
                                    double v = (x[at] - mean) * rstd * g[ch] + b[ch];
                                    if (silu) v = v / (1 + Math.exp(-v));
                                    worst = Math.max(worst, Math.abs(v - y[at]));
                                }
                        }
                    String what = java.util.Arrays.toString(s) + " offset " + offset + (silu ? " silu" : "");
                    // fp32 rounding of (x - mean) at |x| ~ 100 is ~4e-6 before scaling by rstd ~ 1
                    assertTrue(worst < (offset == 0 ? 2e-6 : 2e-5), what + ": worst error " + worst);
                }
            }
        }
    }
}
