package io.refldmseg.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The packed GEMM's storage choice and both storages against a naive double reference. */
class GemmTest {
    /** The AVX2 test run sets the expected vector width, so a flag the JVM ignored cannot pass for a test of the 6-row kernel. */
    @Test
    void runsWithTheVectorWidthTheBuildAskedFor() {
        String expected = System.getProperty("refldmseg.expectVectorBits");
        if (expected != null) assertEquals(Integer.parseInt(expected), Gemm.S.vectorBitSize(), "vector width of this test run");
        assertEquals(Gemm.S.vectorBitSize() >= 512 ? 12 : 6, Gemm.MR);
    }

    @Test
    void fp16ExactWeightsAreStoredInHalfAndGiveTheSameProduct() {
        Random r = new Random(3);
        int[][] shapes = {{7, 33, 5}, {13, 70, 600}, {100, 31, 1100}, {257, 64, 64}, {64, 1280, 1000}, {11, 40, 317}, {18, 64, 700}}; // K 317: one deep slice; M 18: 12 + 6 rows
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            float[] x = new float[m * k], w = new float[n * k], half = new float[n * k];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) r.nextGaussian();
                half[i] = Float.float16ToFloat(Float.floatToFloat16(w[i] * 0.05f)); // fp16 values, subnormals included
            }
            half[0] = Float.float16ToFloat((short) 1); // the smallest fp16 subnormal
            Gemm.Packed fp32 = new Gemm.Packed(w, n, k, null), fp16 = new Gemm.Packed(half, n, k, null);
            assertNotNull(fp32.data, "gaussian weights are not fp16 values: fp32 storage");
            assertNull(fp32.half);
            assertNotNull(fp16.half, "fp16 values: half storage");
            assertNull(fp16.data);
            check(m, n, k, x, w, fp32);
            check(m, n, k, x, half, fp16);
            for (int i = 0; i < 100; i++) {
                int idx = r.nextInt(n * k), row = idx / k, col = idx % k;
                assertEquals(half[idx], fp16.at((row / Gemm.NR) * k * Gemm.NR + col * Gemm.NR + row % Gemm.NR), "packed element " + idx);
            }
        }
    }

    private static void check(int m, int n, int k, float[] x, float[] w, Gemm.Packed packed) {
        float[] y = new float[m * n];
        Gemm.multiply(m, Gemm.dense(x, 0, k), packed, y, 0, n, false);
        double worst = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0, mag = 0;
                for (int kk = 0; kk < k; kk++) {
                    acc += (double) x[i * k + kk] * w[j * k + kk];
                    mag += Math.abs((double) x[i * k + kk] * w[j * k + kk]);
                }
                worst = Math.max(worst, Math.abs(acc - y[i * n + j]) / Math.max(mag, 1e-30));
            }
        assertTrue(worst < 1e-5 * Math.sqrt(k), m + "x" + n + "x" + k + (packed.half != null ? " fp16" : " fp32") + ": relative error " + worst);
    }
}
