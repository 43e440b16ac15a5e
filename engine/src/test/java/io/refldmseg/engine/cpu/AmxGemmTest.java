package io.refldmseg.engine.cpu;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The AMX GEMM (cpu_gemm_amx.c): where the CPU has AMX it runs every product with A in place, at fp32
 * accuracy (no worse than the AVX-512 kernels against a double reference), batch invariant, and its
 * Java entry points check every index before the C code runs.
 */
class AmxGemmTest {
    private static NativeGemm amxKernel() {
        NativeGemm kernel = NativeGemm.get();
        Assumptions.assumeTrue(kernel != null && kernel.amx(), "no AMX kernels here: "
                + (kernel == null ? NativeGemm.whyNot() : kernel.amxWhyNot()));
        return kernel;
    }

    /** A CPU with AMX-BF16, 512-bit vectors and the native kernels runs AMX unless switched off; elsewhere the reason is given. */
    @Test
    void theAmxKernelsRunWhereTheCpuHasThem() throws Exception {
        NativeGemm kernel = NativeGemm.get();
        Assumptions.assumeTrue(kernel != null && Gemm.NR == 32, "no native AVX-512 kernels here");
        boolean cpu = NativeGemm.cpuFlags().containsAll(Set.of("amx_tile", "amx_bf16", "avx512bw"));
        boolean off = "false".equals(System.getProperty(NativeGemm.AMX_PROPERTY));
        if (cpu && !off) {
            assertTrue(kernel.amx(), "AMX on this CPU: " + kernel.amxWhyNot());
            assertTrue(new CpuBackend(1).name().contains("AMX"), new CpuBackend(1).name());
        } else {
            assertFalse(kernel.amx());
            assertNotNull(kernel.amxWhyNot());
            assertFalse(new CpuBackend(1).name().contains("AMX"), new CpuBackend(1).name());
        }
    }

    /**
     * Against a double reference, AMX's worst relative error is within twice the AVX-512 kernels' (plus
     * one fp32 rounding): fp32, fp16 and bf16 B, ragged rows (1, 15, 17, 33, 257) and columns, K not a
     * multiple of the 32-value chunk and deeper than one K slice, bias, residual, accumulating onto C,
     * one and two threads. Dropping the third part of A (a 16-bit split) reads ~1e-5 here, 100x over.
     */
    @Test
    void amxProductsHaveFp32Accuracy() {
        amxKernel();
        Random r = new Random(21);
        int[][] shapes = {{1, 33, 5}, {15, 32, 32}, {17, 64, 40}, {33, 70, 600}, {257, 64, 1100}, {50, 1030, 70}, {32, 31, 513}, {64, 96, 64}};
        try (Parallel one = new Parallel(1); Parallel two = new Parallel(2)) {
            for (int[] s : shapes) {
                int m = s[0], n = s[1], k = s[2];
                float[] x = new float[m * k], w = new float[n * k], half = new float[n * k], brain = new float[n * k], bias = new float[n];
                float[] residual = new float[m * n];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) r.nextGaussian();
                    half[i] = Float.float16ToFloat(Float.floatToFloat16(w[i] * 0.05f));
                    brain[i] = Float.intBitsToFloat(Float.floatToRawIntBits(w[i]) & 0xffff0000);
                }
                brain[0] = Float.intBitsToFloat(0x0d800000); // outside fp16: bf16 storage
                for (int i = 0; i < n; i++) bias[i] = (float) r.nextGaussian();
                for (int i = 0; i < residual.length; i++) residual[i] = (float) r.nextGaussian();
                for (float[] weights : new float[][]{w, half, brain}) {
                    Gemm.Packed packed = new Gemm.Packed(two, weights, n, k, bias);
                    String what = m + "x" + n + "x" + k + (packed.bf16 ? " bf16" : packed.half != null ? " fp16" : " fp32");
                    for (Parallel par : new Parallel[]{one, two}) {
                        for (int mode = 0; mode < 3; mode++) { // 0: bias, 1: residual + bias, 2: accumulating onto C
                            float[] start = mode == 2 ? residual.clone() : new float[m * n];
                            float[] amx = start.clone(), avx = start.clone();
                            float[] res = mode == 1 ? residual : null;
                            Gemm.multiply(par, m, Gemm.dense(x, 0, k), packed, amx, 0, n, mode == 2, res, true);
                            Gemm.multiply(par, m, Gemm.dense(x, 0, k), packed, avx, 0, n, mode == 2, res, false);
                            double amxErr = 0, avxErr = 0;
                            for (int i = 0; i < m; i++)
                                for (int j = 0; j < n; j++) {
                                    double acc = mode == 2 ? residual[i * n + j] : (mode == 1 ? residual[i * n + j] : 0) + bias[j], mag = Math.abs(acc);
                                    for (int kk = 0; kk < k; kk++) {
                                        acc += (double) x[i * k + kk] * weights[j * k + kk];
                                        mag += Math.abs((double) x[i * k + kk] * weights[j * k + kk]);
                                    }
                                    amxErr = Math.max(amxErr, Math.abs(acc - amx[i * n + j]) / mag);
                                    avxErr = Math.max(avxErr, Math.abs(acc - avx[i * n + j]) / mag);
                                }
                            String where = what + ", mode " + mode + ", " + par.threads() + " thread(s)";
                            assertTrue(amxErr <= 2 * avxErr + 0x1p-24, where + ": AMX relative error " + amxErr + " vs AVX-512 " + avxErr);
                        }
                    }
                }
            }
        }
    }

    /** The default product takes AMX from {@link Gemm#AMX_MIN_COLUMNS} output columns on and the AVX-512 kernels below: their bits. */
    @Test
    void productsWithFewColumnsStayOnAvx512() {
        amxKernel();
        Random r = new Random(23);
        int m = 300, k = 256;
        for (int n : new int[]{Gemm.AMX_MIN_COLUMNS / 2, Gemm.AMX_MIN_COLUMNS - 1, Gemm.AMX_MIN_COLUMNS}) {
            float[] x = new float[m * k], w = new float[n * k];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < w.length; i++) w[i] = Float.float16ToFloat(Float.floatToFloat16((float) r.nextGaussian()));
            try (Parallel two = new Parallel(2)) {
                Gemm.Packed packed = new Gemm.Packed(two, w, n, k, null);
                float[] chosen = new float[m * n], amx = new float[m * n], avx = new float[m * n];
                Gemm.multiply(two, m, Gemm.dense(x, 0, k), packed, chosen, 0, n, false);
                Gemm.multiply(two, m, Gemm.dense(x, 0, k), packed, amx, 0, n, false, null, true);
                Gemm.multiply(two, m, Gemm.dense(x, 0, k), packed, avx, 0, n, false, null, false);
                assertFalse(java.util.Arrays.equals(amx, avx), "the two kernels' bits differ at " + n + " columns");
                assertArrayEquals(n >= Gemm.AMX_MIN_COLUMNS ? amx : avx, chosen, n + " columns");
            }
        }
    }

    /** A row's AMX result does not depend on the rows beside it: one row at a time, 17 at a time and all 1100 at once agree bit for bit. */
    @Test
    void amxRowsAreBatchInvariant() {
        amxKernel();
        Random r = new Random(22);
        int m = 1100, n = 70, k = 700; // more rows than one AMX band
        float[] x = new float[m * k], w = new float[n * k], bias = new float[n];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = Float.float16ToFloat(Float.floatToFloat16((float) r.nextGaussian()));
        for (int i = 0; i < n; i++) bias[i] = (float) r.nextGaussian();
        try (Parallel two = new Parallel(2)) {
            Gemm.Packed packed = new Gemm.Packed(two, w, n, k, bias);
            float[] all = new float[m * n];
            Gemm.multiply(two, m, Gemm.dense(x, 0, k), packed, all, 0, n, false, null, true);
            for (int step : new int[]{1, 17}) {
                float[] pieces = new float[m * n];
                for (int r0 = 0; r0 < m; r0 += step) {
                    int rows = Math.min(step, m - r0);
                    float[] part = new float[rows * n];
                    Gemm.multiply(two, rows, Gemm.dense(x, r0 * k, k), packed, part, 0, n, false, null, true);
                    System.arraycopy(part, 0, pieces, r0 * n, rows * n);
                }
                assertArrayEquals(all, pieces, "rows " + step + " at a time vs all " + m);
            }
        }
    }

    /** The C code trusts its indices, so the Java side checks them: an AMX call reaching past any array throws. */
    @Test
    void amxCallsOutsideTheirArraysThrowInsteadOfWriting() {
        NativeGemm kernel = amxKernel();
        int rows = 20, k = 40, panels = 2, lastCols = 5;
        float[] a = new float[(rows - 1) * k + k];
        ThreadLocal<java.lang.foreign.MemorySegment> splitScratch = new ThreadLocal<>(), packScratch = new ThreadLocal<>();
        java.lang.foreign.MemorySegment split = NativeGemm.amxScratch(splitScratch, NativeGemm.amxSplitSize(rows, k));
        long splitValues = split.byteSize() / 2 - NativeGemm.amxSplitSize(rows, k); // the scratch may be larger: offsets that reach its end
        kernel.amxSplitA(a, 0, k, rows, k, split, splitValues); // exactly fits
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxSplitA(a, 1, k, rows, k, split, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxSplitA(a, 0, k, rows, k, split, splitValues + 1));
        assertThrows(IllegalArgumentException.class, () -> kernel.amxSplitA(a, 0, k, rows, k, java.lang.foreign.MemorySegment.ofArray(new short[4096]), 0)); // on the heap
        assertThrows(IllegalArgumentException.class, () -> kernel.amxSplitA(a, 0, k - 1, rows, k, split, 0));
        short[] h = new short[(panels - 1) * k * 32 + 32 * k];
        java.lang.foreign.MemorySegment packed = NativeGemm.amxScratch(packScratch, NativeGemm.amxPackedSize(k, 3));
        int ldc = 32 + lastCols, chunks = (k + 31) / 32, hs = k * 32;
        float[] c = new float[(rows - 1) * ldc + 32 + lastCols], bias = new float[64], f = new float[h.length];
        kernel.amxGemm(split, splitValues, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, true, bias, 0, packed); // exactly fits
        kernel.amxGemm(split, splitValues, rows, chunks, 0, null, f, 0, hs, false, k, panels, lastCols, c, c.clone(), 0, ldc, true, bias, 0, packed); // fp32 B, from a residual
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, splitValues + 1, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, splitValues, rows + 13, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 1, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, null, new float[h.length - 1], 0, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0,
                packed.asSlice(0, 2 * NativeGemm.amxPackedSize(k, 2) - 2))); // too small for fp16's two parts
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols + 1, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, null, 1, ldc, false, null, 0, packed));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, new float[c.length - 1], 0, ldc, true, null, 0, packed));
        assertThrows(IndexOutOfBoundsException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, true, bias, 1, packed));
        assertThrows(IllegalArgumentException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 1, h, null, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IllegalArgumentException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 0, hs, false, k, panels, 33, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IllegalArgumentException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, f, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0, packed));
        assertThrows(IllegalArgumentException.class, () -> kernel.amxGemm(split, 0, rows, chunks, 0, h, null, 0, hs, false, k, panels, lastCols, c, null, 0, ldc, false, null, 0,
                java.lang.foreign.MemorySegment.ofArray(new short[8192]))); // packed B on the heap
    }
}
