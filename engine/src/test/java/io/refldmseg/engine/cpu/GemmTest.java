package io.refldmseg.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The packed GEMM's storage choice and both storages against a naive double reference. */
class GemmTest {
    static final Parallel PAR = new Parallel(CpuBackend.cores());

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
            Gemm.Packed fp32 = new Gemm.Packed(PAR, w, n, k, null), fp16 = new Gemm.Packed(PAR, half, n, k, null);
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

    @Test
    void bf16ExactWeightsThatFp16CannotHoldAreStoredInBf16AndGiveTheSameProduct() {
        Random r = new Random(4);
        for (int[] s : new int[][]{{7, 33, 5}, {13, 70, 600}, {18, 64, 700}, {257, 64, 64}}) {
            int m = s[0], n = s[1], k = s[2];
            float[] x = new float[m * k], bf = new float[n * k];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < bf.length; i++) bf[i] = Float.intBitsToFloat(Float.floatToRawIntBits((float) r.nextGaussian() * 0.05f) & 0xffff0000);
            bf[0] = Float.intBitsToFloat(0x33800000); // 2^-24 x 1.0: below fp16's normal range with bf16 precision kept
            bf[1] = Float.intBitsToFloat(0x0d800000); // ~7.9e-31: far outside fp16
            bf[2] = Float.intBitsToFloat(0x47800000); // 65536: above fp16's largest
            Gemm.Packed packed = new Gemm.Packed(PAR, bf, n, k, null);
            assertNotNull(packed.half, "bf16 values: 2 bytes each");
            assertTrue(packed.bf16);
            check(m, n, k, x, bf, packed);
            for (int i = 0; i < 100; i++) {
                int idx = r.nextInt(n * k), row = idx / k, col = idx % k;
                assertEquals(bf[idx], packed.at((row / Gemm.NR) * k * Gemm.NR + col * Gemm.NR + row % Gemm.NR), "packed element " + idx);
            }
            float[] fp32 = bf.clone();
            fp32[3] = Math.nextUp(fp32[3]); // one value that is neither: everything stays fp32
            assertNull(new Gemm.Packed(PAR, fp32, n, k, null).half);
        }
    }

    /** A whole packed operand times one B panel, for every kind of last row group, from row-major and transposed sources. */
    @Test
    void packedRowsTimesOnePanel() {
        Random r = new Random(5);
        for (int rows : new int[]{1, 5, 6, 7, 12, 13, 18, 19, 40}) {
            for (boolean transposed : new boolean[]{false, true}) {
                int k = 37, stride = 50, k0 = 3, kc = 30;
                float[] src = new float[rows * stride + k * stride], b = new float[kc * Gemm.NR];
                for (int i = 0; i < src.length; i++) src[i] = (float) r.nextGaussian();
                for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
                int rowStride = transposed ? 1 : stride, kStride = transposed ? stride : 1, off = 2;
                float[] stale = new float[Gemm.groupedRows(rows) * k];
                java.util.Arrays.fill(stale, Float.NaN); // a reused buffer's old contents must not leak into the padding
                Gemm.PackedRows a = Gemm.packRows(src, off, rowStride, kStride, rows, k, stale);
                int grouped = Gemm.groupedRows(rows);
                assertTrue(grouped >= rows && grouped < rows + Gemm.MR, "grouped rows " + grouped + " for " + rows);
                float[] c = new float[grouped * Gemm.NR];
                Gemm.multiplyPanel(a, k0, kc, b, 0, c, 0, Gemm.NR, false);
                Gemm.multiplyPanel(a, k0, kc, b, 0, c, 0, Gemm.NR, true); // accumulate: twice the product
                for (int i = 0; i < grouped; i++)
                    for (int j = 0; j < Gemm.NR; j++) {
                        double want = 0, mag = 0;
                        for (int kk = 0; i < rows && kk < kc; kk++) {
                            double x = (double) src[off + i * rowStride + (k0 + kk) * kStride] * b[kk * Gemm.NR + j];
                            want += x;
                            mag += Math.abs(x);
                        }
                        assertEquals(2 * want, c[i * Gemm.NR + j], 1e-5 * Math.max(mag, 1e-6), rows + " rows, row " + i + ", column " + j + (transposed ? " (transposed source)" : ""));
                    }
            }
        }
    }

    /** However multiply() cuts the work into row and panel tasks, every element is the serial product's, bit for bit. */
    @Test
    void taskSplitsGiveTheSerialProductBitForBit() {
        Random r = new Random(6);
        try (Parallel two = new Parallel(2)) {
            for (int[] s : new int[][]{{7, 33, 5}, {50, 200, 300}, {95, 1030, 70}, {257, 64, 600}, {300, 48, 20}}) {
                int m = s[0], n = s[1], k = s[2];
                float[] x = new float[m * k], w = new float[n * k], bias = new float[n];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
                for (int i = 0; i < n; i++) bias[i] = (float) r.nextGaussian();
                Gemm.Packed packed = new Gemm.Packed(two, w, n, k, bias);
                // the same rows through an ARows that does not declare itself in place: multiply's one-task-per-core split
                Gemm.ARows dense = Gemm.dense(x, 0, k), undeclared = (m0, mc, k0, kc) -> new Gemm.Block(x, m0 * k + k0, k);
                assertTrue(dense.inPlace());
                assertFalse(undeclared.inPlace());
                for (boolean accumulate : new boolean[]{false, true}) {
                    float[] serial = new float[m * n];
                    java.util.Arrays.fill(serial, 0.5f);
                    float[] split = serial.clone(), splitUndeclared = serial.clone();
                    Gemm.multiplySerial(m, dense, packed, serial, 0, n, accumulate);
                    Gemm.multiply(two, m, dense, packed, split, 0, n, accumulate, null, false);
                    Gemm.multiply(two, m, undeclared, packed, splitUndeclared, 0, n, accumulate, null, false);
                    assertArrayEquals(serial, split, m + "x" + n + "x" + k + (accumulate ? " accumulating" : "") + ": in-place A");
                    assertArrayEquals(serial, splitUndeclared, m + "x" + n + "x" + k + (accumulate ? " accumulating" : "") + ": A not declared in place");
                }
            }
        }
    }

    /**
     * C = residual + A B^T + bias is, bit for bit, accumulating onto C = residual + bias: the residual
     * starts each task's tile, for both kernels, ragged tiles, K slices, fp16 B and a C offset.
     */
    @Test
    void aResidualStartsTheProductBitForBitAsAccumulatingOntoIt() {
        Random r = new Random(9);
        try (Parallel two = new Parallel(2)) {
            for (int[] s : new int[][]{{7, 33, 5}, {50, 200, 300}, {257, 64, 600}, {300, 48, 20}, {12, 1030, 701}}) {
                int m = s[0], n = s[1], k = s[2], off = 5;
                float[] x = new float[m * k], w = new float[n * k], half = new float[n * k], bias = new float[n];
                float[] residual = new float[off + m * n];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) r.nextGaussian();
                    half[i] = Float.float16ToFloat(Float.floatToFloat16(w[i]));
                }
                for (int i = 0; i < n; i++) bias[i] = (float) r.nextGaussian();
                for (int i = 0; i < residual.length; i++) residual[i] = (float) r.nextGaussian();
                for (Gemm.Packed packed : new Gemm.Packed[]{new Gemm.Packed(two, w, n, k, bias), new Gemm.Packed(two, half, n, k, null)}) {
                    float[] expected = new float[residual.length];
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                            expected[off + i * n + j] = residual[off + i * n + j] + (packed.half == null ? bias[j] : 0f);
                    float[] fused = new float[residual.length], scratch = new float[residual.length];
                    Gemm.multiplySerial(m, Gemm.dense(x, 0, k), packed, expected, off, n, true);
                    Gemm.multiply(two, m, Gemm.dense(x, 0, k), packed, fused, off, n, false, residual, false);
                    String what = m + "x" + n + "x" + k + (packed.half != null ? " fp16" : " fp32 with bias");
                    for (int i = off; i < residual.length; i++) assertEquals(expected[i], fused[i], what + ", element " + i);
                    assertThrows(IllegalArgumentException.class, () -> Gemm.multiply(two, m, Gemm.dense(x, 0, k), packed, scratch, off, n, true, residual));
                }
            }
        }
    }

    /**
     * Where the build had gcc and the run has 256-bit vectors on an AVX2 + FMA CPU, the native kernel
     * is what runs: a missing library must fail here, not fall back unnoticed. The run that turns it off
     * (the 256-bit surefire execution) must get the Vector API kernels.
     */
    @Test
    void theNativeKernelRunsWhereItCan() throws Exception {
        boolean gcc = java.util.Arrays.stream(System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator))
                .anyMatch(d -> new java.io.File(d, "gcc").canExecute());
        int bits = Gemm.S.vectorBitSize();
        java.util.Set<String> flags = NativeGemm.cpuFlags();
        boolean can = gcc && System.getProperty("os.arch", "").equals("amd64")
                && (bits == 256 && flags.containsAll(java.util.Set.of("avx2", "fma")) || bits == 512 && flags.contains("avx512f"));
        boolean off = "false".equals(System.getProperty(NativeGemm.PROPERTY));
        if (off) {
            assertNull(NativeGemm.get(), "-D" + NativeGemm.PROPERTY + "=false");
            assertTrue(NativeGemm.whyNot().contains(NativeGemm.PROPERTY), NativeGemm.whyNot());
        } else if (can) {
            assertNotNull(NativeGemm.get(), "native kernel with " + bits + "-bit vectors on this machine with gcc: " + NativeGemm.whyNot());
            assertNull(NativeGemm.whyNot());
        } else {
            assertNull(NativeGemm.get());
            assertNotNull(NativeGemm.whyNot());
        }
        String kernels = NativeGemm.get() == null ? "Vector API kernels" : bits == 256 ? "native AVX2 kernel" : "native AVX-512 kernels";
        assertTrue(new CpuBackend(1).name().contains(kernels), new CpuBackend(1).name());
    }

    /** The native kernel gives the Vector API kernel's products bit for bit: ragged rows and columns, bias, accumulate, K slices, fp16 and bf16 B. */
    @Test
    void nativeKernelEqualsTheVectorApiKernelBitForBit() {
        org.junit.jupiter.api.Assumptions.assumeTrue(NativeGemm.get() != null, "no native kernel here: " + NativeGemm.whyNot());
        Random r = new Random(8);
        for (int[] s : new int[][]{{6, 16, 8}, {7, 33, 5}, {50, 200, 300}, {257, 64, 600}, {300, 48, 20}, {12, 1030, 701}, {200, 16, 320}, {19, 40, 9}, {23, 70, 33}, {30, 32, 300}, {18, 31, 17}}) {
            int m = s[0], n = s[1], k = s[2];
            float[] x = new float[m * k + 3], w = new float[n * k], half = new float[n * k], brain = new float[n * k], bias = new float[n];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) r.nextGaussian();
                half[i] = Float.float16ToFloat(Float.floatToFloat16(w[i]));
                brain[i] = Float.intBitsToFloat(Float.floatToRawIntBits(w[i]) & 0xffff0000);
            }
            half[0] = Float.float16ToFloat((short) 1); // the smallest fp16 subnormal
            brain[0] = Float.intBitsToFloat(0x0d800000); // far outside fp16's range: bf16 storage
            for (int i = 0; i < n; i++) bias[i] = (float) r.nextGaussian();
            Gemm.Packed bf16 = new Gemm.Packed(PAR, brain, n, k, null);
            assertTrue(bf16.bf16);
            for (Gemm.Packed packed : new Gemm.Packed[]{new Gemm.Packed(PAR, w, n, k, bias), new Gemm.Packed(PAR, half, n, k, null), bf16}) {
                for (boolean accumulate : new boolean[]{false, true}) {
                    float[] vec = new float[m * n + 5];
                    java.util.Arrays.fill(vec, 0.25f);
                    float[] nat = vec.clone();
                    Gemm.ARows a = Gemm.dense(x, 3, k);
                    Gemm.multiplySerial(m, a, packed, vec, 5, n, accumulate, null);
                    Gemm.multiplySerial(m, a, packed, nat, 5, n, accumulate, NativeGemm.get());
                    String what = m + "x" + n + "x" + k + (packed.bf16 ? " bf16" : packed.half != null ? " fp16" : " fp32 with bias") + (accumulate ? " accumulating" : "");
                    assertArrayEquals(vec, nat, what);
                    try (Parallel two = new Parallel(2)) { // row and panel tasks: blocks that start past panel 0
                        float[] split = new float[m * n + 5];
                        java.util.Arrays.fill(split, 0.25f);
                        Gemm.multiply(two, m, a, packed, split, 5, n, accumulate, null, false);
                        assertArrayEquals(vec, split, what + ", 2 threads");
                    }
                }
                // a residual: the native kernels start their tiles from it, the Vector API ones accumulate onto residual + bias
                float[] residual = new float[m * n + 5], vec = new float[m * n + 5];
                for (int i = 0; i < residual.length; i++) residual[i] = (float) r.nextGaussian();
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) vec[5 + i * n + j] = residual[5 + i * n + j] + (packed.bias == null ? 0f : packed.bias[j]);
                Gemm.multiplySerial(m, Gemm.dense(x, 3, k), packed, vec, 5, n, true, null);
                try (Parallel two = new Parallel(2)) {
                    float[] nat = new float[m * n + 5];
                    Gemm.multiply(two, m, Gemm.dense(x, 3, k), packed, nat, 5, n, false, residual, false);
                    assertArrayEquals(vec, nat, m + "x" + n + "x" + k + " from a residual" + (packed.bias == null ? "" : " and a bias"));
                }
            }
        }
        for (int rows : new int[]{1, 6, 7, 13, 19, 24, 40}) { // the attention / Winograd entry: packed rows times one panel
            int k = 37, k0 = 3, kc = 30;
            float[] src = new float[rows * k], b = new float[kc * Gemm.NR + 4];
            for (int i = 0; i < src.length; i++) src[i] = (float) r.nextGaussian();
            for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
            Gemm.PackedRows a = Gemm.packRows(src, 0, k, 1, rows, k, null);
            int ldc = Gemm.NR + 4;
            float[] vec = new float[Gemm.groupedRows(rows) * ldc + 2], nat = vec.clone();
            for (boolean accumulate : new boolean[]{false, true}) {
                Gemm.multiplyPanel(a, k0, kc, b, 4, vec, 2, ldc, accumulate, null);
                Gemm.multiplyPanel(a, k0, kc, b, 4, nat, 2, ldc, accumulate, NativeGemm.get());
                assertArrayEquals(vec, nat, rows + " packed rows" + (accumulate ? " accumulating" : ""));
            }
        }
    }

    /** On 2 cores the AVX-512 block cuts 8 tasks the way that reads least, where that is clearly less; the 6-row kernels keep their split. */
    @Test
    void theAvx512BlockSplitsItsWorkToReadLeast() {
        assertEquals(new Gemm.Split(2, 4), Gemm.split(2, 256, panels(640), true, true)); // 2 x 640 + 4 x 256 < 640 + 8 x 256
        assertEquals(new Gemm.Split(4, 2), Gemm.split(2, 1024, panels(320), true, true));
        assertEquals(new Gemm.Split(1, 8), Gemm.split(2, 257, panels(1024), true, true)); // 2 x 4 reads as much: as before
        assertEquals(new Gemm.Split(1, 8), Gemm.split(2, 64, panels(1280), true, true)); // too few rows for two row tasks
        assertEquals(new Gemm.Split(1, 8), Gemm.split(2, 256, panels(640), true, false));
        assertEquals(new Gemm.Split(1, 2), Gemm.split(2, 16, panels(1280), false, true)); // A packed per task (an im2col): one task per core
    }

    private static Gemm.Packed panels(int n) {
        return Gemm.Packed.ofPanels(n, 1, new float[(n + Gemm.NR - 1) / Gemm.NR * Gemm.NR]);
    }

    /** The C code trusts its indices, so the Java side checks them: a block reaching past any array throws. */
    @Test
    void nativeBlocksOutsideTheirArraysThrowInsteadOfWriting() {
        org.junit.jupiter.api.Assumptions.assumeTrue(NativeGemm.get() != null, "no native kernel here: " + NativeGemm.whyNot());
        NativeGemm kernel = NativeGemm.get();
        short[] h = new short[3 * 40];
        float[] wide = new float[2 * 50 + 40];
        kernel.widen(h, 0, 40, wide, 0, 50, 40, 3, false); // three slices of 40, exactly fits both
        kernel.widen(h, 0, 40, wide, 0, 50, 40, 3, true);
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.widen(h, 1, 40, wide, 0, 50, 40, 3, false));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.widen(h, 0, 40, wide, 1, 50, 40, 3, false));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.widen(h, 0, 41, wide, 0, 50, 40, 3, false));
        assertThrows(IllegalArgumentException.class, () -> kernel.widen(h, 0, -40, wide, 0, 50, 40, 3, false));
        if (Gemm.NR == 32) {
            float[] ap = new float[12 * 8], a = new float[18 * 8], b = new float[8 * 32], c = new float[18 * 32], bias = new float[32];
            short[] b16 = new short[8 * 32];
            kernel.block512(null, 0, 0, 18, a, 0, 8, 0, b, 0, 0, b16, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, bias, 0); // 16-bit B, exactly fits
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(null, 0, 0, 18, a, 0, 8, 0, b, 0, 0, b16, 1, 0, false, 1, 32, c, null, 0, 32, 8, false, null, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(null, 0, 0, 18, a, 0, 8, 0, b, 0, 0, new short[8 * 32 - 1], 0, 0, true, 1, 32, c, null, 0, 32, 8, false, null, 0));
            kernel.block512(ap, 0, 96, 12, a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, bias, 0); // exactly fits
            kernel.block512(null, 0, 0, 18, a, 0, 8, 0, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, bias, 0); // in place, exactly fits
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(null, 0, 0, 12, a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 9, false, null, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(ap, 1, 96, 12, a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, null, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(ap, 0, 96, 13, a, 0, 8, 0, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, null, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(ap, 0, 96, 12, a, 1, 8, 6, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, null, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(ap, 0, 96, 12, a, 0, 8, 6, b, 0, 32, null, 0, 0, false, 2, 32, c, null, 0, 64, 8, false, null, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(ap, 0, 96, 12, a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 1, 32, 8, true, null, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(ap, 0, 96, 12, a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, bias, 1));
            assertThrows(IllegalArgumentException.class, () -> kernel.block512(ap, 0, 96, 12, a, 0, 8, 7, b, 0, 0, null, 0, 0, false, 1, 32, c, null, 0, 32, 8, false, null, 0));
            assertThrows(IllegalArgumentException.class, () -> kernel.block512(ap, 0, 96, 12, a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 33, c, null, 0, 32, 8, false, null, 0));
            kernel.block512(null, 0, 0, 18, a, 0, 8, 0, b, 0, 0, null, 0, 0, false, 1, 32, c, c.clone(), 0, 32, 8, false, bias, 0); // from a residual
            assertThrows(IndexOutOfBoundsException.class, () -> kernel.block512(null, 0, 0, 18, a, 0, 8, 0, b, 0, 0, null, 0, 0, false, 1, 32, c, new float[c.length - 1], 0, 32, 8, false, null, 0));
            assertThrows(IllegalStateException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 16, c, null, 0, 16, 8, false, null, 0));
            return;
        }
        float[] a = new float[6 * 8], b = new float[8 * 16], c = new float[6 * 16], bias = new float[16];
        kernel.block(a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 16, c, null, 0, 16, 8, false, bias, 0); // exactly fits
        kernel.block(a, 0, 8, 6, b, 0, 0, new short[8 * 16], 0, 0, false, 1, 16, c, null, 0, 16, 8, false, bias, 0); // 16-bit B, exactly fits
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 0, new short[8 * 16 - 1], 0, 0, true, 1, 16, c, null, 0, 16, 8, false, null, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 0, new short[8 * 16], 1, 0, false, 1, 16, c, null, 0, 16, 8, false, null, 0));
        kernel.block(a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 16, c, c.clone(), 0, 16, 8, false, bias, 0); // from a residual
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 16, c, new float[c.length - 1], 0, 16, 8, false, null, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 1, 8, 6, b, 0, 0, null, 0, 0, false, 1, 16, c, null, 0, 16, 8, false, null, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 16, null, 0, 0, false, 2, 16, c, null, 0, 32, 8, false, null, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 16, c, null, 1, 16, 8, true, null, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 16, c, null, 0, 16, 8, false, bias, 1));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.block(a, 0, 8, 7, b, 0, 0, null, 0, 0, false, 1, 16, c, null, 0, 16, 8, false, null, 0));
        assertThrows(IllegalArgumentException.class, () -> kernel.block(a, 0, 8, 6, b, 0, 0, null, 0, 0, false, 1, 17, c, null, 0, 16, 8, false, null, 0));
    }

    private static void check(int m, int n, int k, float[] x, float[] w, Gemm.Packed packed) {
        float[] y = new float[m * n];
        Gemm.multiply(PAR, m, Gemm.dense(x, 0, k), packed, y, 0, n, false);
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
