package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * C[M, N] (+)= A[M, K] B[N, K]^T (+ bias), fp32, with B packed once into panels of NR columns
 * ({@link Packed}) and a 6 x NR register-blocked Vector API micro-kernel (NR = two vectors: 32
 * floats on AVX-512, 16 on AVX2). Blocking: a K slice of a run of B panels stays in L2 while the
 * task's rows pass over it, each B micro-panel stays in L1 while a block of rows passes over it.
 * A comes from an {@link ARows} source, either the activation itself (linear, 1x1 conv) or an
 * im2col tile of one block and K slice built on the fly (3x3 and patch convs), so no full im2col
 * matrix exists.
 * Ragged edges run the same kernel on zero-padded scratch tiles (no masked vector ops).
 */
final class Gemm {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    static final int NR = 2 * L;
    static final int MR = 6;
    /** The deepest K slice: its B micro-panel (KC x NR floats, 32 KiB with AVX-512) stays in a 48 KiB L1 (384 measured 10-15% slower). */
    static final int KC = 256;
    /**
     * A K up to this is one slice: at K = 320 (the UNet's 320-channel linears) two slices of 160
     * wrote every C tile twice (1024x2560x320: 172 -> 203-209 GFLOP/s), deeper K stays at KC.
     */
    static final int MAX_SINGLE_SLICE = KC + KC / 4;
    static final int MC = 16 * MR;

    private Gemm() {
    }

    /**
     * B^T packed as [panel][k][NR] (zero padded past N), and the bias padded likewise. A weight
     * whose every value is exactly an fp16 number (an fp16 checkpoint) is kept in fp16, half the
     * memory, and widened one K slice at a time inside the GEMM; any other weight stays fp32, so
     * packing never rounds.
     */
    static final class Packed {
        final int n, k, panels;
        /** fp32 panels, or null when {@link #half} holds them. */
        final float[] data;
        /** fp16 panels (IEEE binary16 bits), or null when {@link #data} holds them. */
        final short[] half;
        final float[] bias;

        /** {@code b} is [n, k] row-major (a PyTorch linear weight). */
        Packed(float[] b, int n, int k, float[] bias) {
            if ((long) n * k != b.length) throw new IllegalArgumentException("weight has " + b.length + " values, not " + n + "x" + k);
            if (bias != null && bias.length != n) throw new IllegalArgumentException("bias has " + bias.length + " values, not " + n);
            this.n = n;
            this.k = k;
            this.panels = (n + NR - 1) / NR;
            int size = Math.multiplyExact(panels * NR, k);
            boolean fp16 = exactInHalf(b);
            this.data = fp16 ? null : new float[size];
            this.half = fp16 ? new short[size] : null;
            Parallel.forEach(panels, p -> {
                int base = p * k * NR;
                for (int j = 0; j < NR && p * NR + j < n; j++) {
                    int row = (p * NR + j) * k;
                    if (fp16) for (int kk = 0; kk < k; kk++) half[base + kk * NR + j] = Float.floatToFloat16(b[row + kk]);
                    else for (int kk = 0; kk < k; kk++) data[base + kk * NR + j] = b[row + kk];
                }
            });
            if (bias == null) {
                this.bias = null;
            } else {
                this.bias = new float[panels * NR];
                System.arraycopy(bias, 0, this.bias, 0, n);
            }
        }

        /** Packed element {@code i} as fp32. */
        float at(int i) {
            return half != null ? Float.float16ToFloat(half[i]) : data[i];
        }

        private static boolean exactInHalf(float[] b) {
            int chunks = Math.max(1, Math.min(Parallel.THREADS * 4, b.length / 65536));
            boolean[] inexact = new boolean[chunks];
            Parallel.forEach(chunks, c -> {
                for (int i = (int) ((long) b.length * c / chunks), end = (int) ((long) b.length * (c + 1) / chunks); i < end; i++) {
                    if (Float.floatToRawIntBits(Float.float16ToFloat(Float.floatToFloat16(b[i]))) != Float.floatToRawIntBits(b[i])) {
                        inexact[c] = true;
                        return;
                    }
                }
            });
            for (boolean x : inexact) if (x) return false;
            return true;
        }
    }

    /**
     * Where A comes from: {@code slice(m0, mc, k0, kc)} returns rows [m0, m0 + mc) x columns
     * [k0, k0 + kc) as a block whose element (r, k) is at {@code offset + r * lda + k}.
     */
    interface ARows {
        Block slice(int m0, int mc, int k0, int kc);
    }

    record Block(float[] data, int offset, int lda) {
    }

    /** A is a plain row-major matrix with row stride {@code lda}. */
    static ARows dense(float[] a, int offset, int lda) {
        return (m0, mc, k0, kc) -> new Block(a, offset + m0 * lda + k0, lda);
    }

    /** Bytes of B (one K slice of a run of panels) that a task keeps in L2 while its rows pass over it. */
    private static final int B_SLICE_BYTES = 1 << 20;

    private static final ThreadLocal<float[]> EDGE_C = ThreadLocal.withInitial(() -> new float[MR * NR]);
    private static final ThreadLocal<float[]> EDGE_A = ThreadLocal.withInitial(() -> new float[MR * MAX_SINGLE_SLICE]);

    /**
     * C (rows m, row stride ldc, starting at cOff) = A B^T + bias, or += A B^T when
     * {@code accumulate} (then the bias is not added). Work is cut into about two tasks per core,
     * by rows first (each task then reads B once, not once per row block), by panels when there
     * are too few rows.
     */
    static void multiply(int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate) {
        if (m == 0) return;
        int groups = (m + MR - 1) / MR, target = 2 * Parallel.THREADS;
        int rowTasks = Math.max(1, Math.min(target, groups / 16));
        int panelTasks = Math.min(b.panels, (target + rowTasks - 1) / rowTasks);
        Parallel.forEach(rowTasks * panelTasks, t -> {
            int rt = t / panelTasks, pt = t % panelTasks;
            int g0 = (int) ((long) groups * rt / rowTasks), g1 = (int) ((long) groups * (rt + 1) / rowTasks);
            int p0 = b.panels * pt / panelTasks, p1 = b.panels * (pt + 1) / panelTasks;
            int m0 = g0 * MR, m1 = Math.min(m, g1 * MR);
            run(a, m0, m1, b, p0, p1, c, cOff, ldc, accumulate);
        });
    }

    /** The same product on the calling thread only (for callers that parallelise at a coarser grain). */
    static void multiplySerial(int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate) {
        if (m > 0) run(a, 0, m, b, 0, b.panels, c, cOff, ldc, accumulate);
    }

    /**
     * Rows [m0, m1) times panels [p0, p1). Panels go in runs whose K slice fits {@link
     * #B_SLICE_BYTES}; K is one slice up to {@link #MAX_SINGLE_SLICE}, else even slices of at most
     * KC; rows go in blocks of MC so a block's A slice stays in L2 while each B micro-panel (L1)
     * passes over the block's row groups.
     */
    private static void run(ARows a, int m0, int m1, Packed b, int p0, int p1, float[] c, int cOff, int ldc, boolean accumulate) {
        int slices = b.k <= MAX_SINGLE_SLICE ? 1 : (b.k + KC - 1) / KC, step = (b.k + slices - 1) / slices; // even slices: no thin tail
        int runPanels = Math.max(1, B_SLICE_BYTES / (step * NR * Float.BYTES));
        int runs = (p1 - p0 + runPanels - 1) / runPanels;
        for (int r = 0; r < runs; r++) {
            int q0 = p0 + (p1 - p0) * r / runs, q1 = p0 + (p1 - p0) * (r + 1) / runs;
            for (int k0 = 0; k0 < b.k; k0 += step) {
                int kc = Math.min(step, b.k - k0);
                boolean acc = accumulate || k0 > 0;
                float[] bData = b.data;
                int bBase = q0 * b.k * NR + k0 * NR, bStride = b.k * NR;
                if (b.half != null) { // widen this K slice of the run's panels once; every row block reuses it
                    bData = widened(b, q0, q1, k0, kc);
                    bBase = 0;
                    bStride = kc * NR;
                }
                for (int mb = m0; mb < m1; mb += MC) {
                    int mc = Math.min(MC, m1 - mb);
                    block(a.slice(mb, mc, k0, kc), mc, kc, bData, bBase, bStride, b, q0, q1, c, cOff + mb * ldc, ldc, acc);
                }
            }
        }
    }

    private static final ThreadLocal<float[]> WIDE_B = ThreadLocal.withInitial(() -> new float[0]);

    /** The fp16 slice [k0, k0 + kc) of panels [q0, q1) as fp32, laid out [panel - q0][kc][NR]. */
    private static float[] widened(Packed b, int q0, int q1, int k0, int kc) {
        int len = kc * NR;
        float[] w = WIDE_B.get();
        if (w.length < (q1 - q0) * len) {
            w = new float[(q1 - q0) * len];
            WIDE_B.set(w);
        }
        short[] h = b.half;
        for (int p = q0; p < q1; p++) {
            int src = p * b.k * NR + k0 * NR, dst = (p - q0) * len;
            for (int i = 0; i < len; i++) w[dst + i] = Float.float16ToFloat(h[src + i]);
        }
        return w;
    }

    /** One A slice (mc rows x kc) times a K slice of panels [p0, p1), panel p's at bData[bBase + (p - p0) * bStride]. */
    private static void block(Block blk, int mc, int kc, float[] bData, int bBase, int bStride, Packed b, int p0, int p1,
                              float[] c, int cOff, int ldc, boolean acc) {
        int groups = (mc + MR - 1) / MR, tail = mc - (groups - 1) * MR;
        float[] bias = acc ? null : b.bias, edgeA = null;
        if (tail < MR) { // ragged last row group: the same kernel on a zero-padded copy, made once per slice
            edgeA = EDGE_A.get();
            Arrays.fill(edgeA, 0, MR * kc, 0f);
            for (int r = 0; r < tail; r++) System.arraycopy(blk.data(), blk.offset() + ((groups - 1) * MR + r) * blk.lda(), edgeA, r * kc, kc);
        }
        for (int p = p0; p < p1; p++) {
            int cols = Math.min(NR, b.n - p * NR), bOff = bBase + (p - p0) * bStride;
            for (int g = 0; g < groups; g++) {
                int rows = Math.min(MR, mc - g * MR), at = cOff + g * MR * ldc + p * NR;
                boolean edge = rows < MR;
                float[] a = edge ? edgeA : blk.data();
                int aOff = edge ? 0 : blk.offset() + g * MR * blk.lda(), lda = edge ? kc : blk.lda();
                if (rows == MR && cols == NR) {
                    kernel(a, aOff, lda, bData, bOff, c, at, ldc, kc, acc, bias, p * NR);
                } else { // ragged columns or rows: the same kernel on a scratch tile of C
                    float[] ec = EDGE_C.get();
                    if (acc) for (int r = 0; r < rows; r++) System.arraycopy(c, at + r * ldc, ec, r * NR, cols);
                    kernel(a, aOff, lda, bData, bOff, ec, 0, NR, kc, acc, bias, p * NR);
                    for (int r = 0; r < rows; r++) System.arraycopy(ec, r * NR, c, at + r * ldc, cols);
                }
            }
        }
    }

    /** The 6 x NR micro-kernel: 12 vector accumulators, one broadcast of A per row (stride lda) and k. */
    private static void kernel(float[] a, int aOff, int lda, float[] bp, int bOff, float[] c, int cOff, int ldc,
                               int kc, boolean acc, float[] bias, int biasOff) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (acc) {
            c00 = FloatVector.fromArray(S, c, cOff);
            c01 = FloatVector.fromArray(S, c, cOff + L);
            c10 = FloatVector.fromArray(S, c, cOff + ldc);
            c11 = FloatVector.fromArray(S, c, cOff + ldc + L);
            c20 = FloatVector.fromArray(S, c, cOff + 2 * ldc);
            c21 = FloatVector.fromArray(S, c, cOff + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, cOff + 3 * ldc);
            c31 = FloatVector.fromArray(S, c, cOff + 3 * ldc + L);
            c40 = FloatVector.fromArray(S, c, cOff + 4 * ldc);
            c41 = FloatVector.fromArray(S, c, cOff + 4 * ldc + L);
            c50 = FloatVector.fromArray(S, c, cOff + 5 * ldc);
            c51 = FloatVector.fromArray(S, c, cOff + 5 * ldc + L);
        } else {
            FloatVector b0 = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, biasOff);
            FloatVector b1 = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, biasOff + L);
            c00 = c10 = c20 = c30 = c40 = c50 = b0;
            c01 = c11 = c21 = c31 = c41 = c51 = b1;
        }
        int a0 = aOff, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        for (int k = 0, bo = bOff; k < kc; k++, bo += NR) {
            FloatVector b0 = FloatVector.fromArray(S, bp, bo);
            FloatVector b1 = FloatVector.fromArray(S, bp, bo + L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + k]);
            c00 = b0.fma(x, c00);
            c01 = b1.fma(x, c01);
            x = FloatVector.broadcast(S, a[a1 + k]);
            c10 = b0.fma(x, c10);
            c11 = b1.fma(x, c11);
            x = FloatVector.broadcast(S, a[a2 + k]);
            c20 = b0.fma(x, c20);
            c21 = b1.fma(x, c21);
            x = FloatVector.broadcast(S, a[a3 + k]);
            c30 = b0.fma(x, c30);
            c31 = b1.fma(x, c31);
            x = FloatVector.broadcast(S, a[a4 + k]);
            c40 = b0.fma(x, c40);
            c41 = b1.fma(x, c41);
            x = FloatVector.broadcast(S, a[a5 + k]);
            c50 = b0.fma(x, c50);
            c51 = b1.fma(x, c51);
        }
        c00.intoArray(c, cOff);
        c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc);
        c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc);
        c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc);
        c31.intoArray(c, cOff + 3 * ldc + L);
        c40.intoArray(c, cOff + 4 * ldc);
        c41.intoArray(c, cOff + 4 * ldc + L);
        c50.intoArray(c, cOff + 5 * ldc);
        c51.intoArray(c, cOff + 5 * ldc + L);
    }
}
