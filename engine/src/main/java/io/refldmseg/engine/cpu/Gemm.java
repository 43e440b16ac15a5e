package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * C[M, N] (+)= A[M, K] B[N, K]^T (+ bias), fp32, with B packed once into panels of NR columns
 * ({@link Packed}) and a 6 x NR register-blocked Vector API micro-kernel (NR = two vectors: 32
 * floats on AVX-512, 16 on AVX2). K is blocked by KC so a B panel slice stays in L2; rows of A
 * come from an {@link ARows} source, which is either the activation itself (linear, 1x1 conv) or
 * a tile of im2col rows built on the fly (3x3 and patch convs), so no full im2col matrix exists.
 * Ragged edges run the same kernel on zero-padded scratch tiles (no masked vector ops).
 */
final class Gemm {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    static final int NR = 2 * L;
    static final int MR = 6;
    static final int KC = 384;
    static final int MC = 16 * MR;

    private Gemm() {
    }

    /** B^T packed as [panel][k][NR] (zero padded past N), and the bias padded likewise. */
    static final class Packed {
        final int n, k, panels;
        final float[] data;
        final float[] bias;

        /** {@code b} is [n, k] row-major (a PyTorch linear weight). */
        Packed(float[] b, int n, int k, float[] bias) {
            if ((long) n * k != b.length) throw new IllegalArgumentException("weight has " + b.length + " values, not " + n + "x" + k);
            if (bias != null && bias.length != n) throw new IllegalArgumentException("bias has " + bias.length + " values, not " + n);
            this.n = n;
            this.k = k;
            this.panels = (n + NR - 1) / NR;
            this.data = new float[Math.multiplyExact(panels * NR, k)];
            Parallel.forEach(panels, p -> {
                int base = p * k * NR;
                for (int j = 0; j < NR && p * NR + j < n; j++) {
                    int row = (p * NR + j) * k;
                    for (int kk = 0; kk < k; kk++) data[base + kk * NR + j] = b[row + kk];
                }
            });
            if (bias == null) {
                this.bias = null;
            } else {
                this.bias = new float[panels * NR];
                System.arraycopy(bias, 0, this.bias, 0, n);
            }
        }
    }

    /** Where the rows of A come from: {@code rows(m0, mc)} returns a block with row stride lda. */
    interface ARows {
        Block rows(int m0, int mc);
    }

    record Block(float[] data, int offset, int lda) {
    }

    /** A is a plain row-major matrix with row stride {@code lda}. */
    static ARows dense(float[] a, int offset, int lda) {
        return (m0, mc) -> new Block(a, offset + m0 * lda, lda);
    }

    private static final ThreadLocal<float[]> EDGE_C = ThreadLocal.withInitial(() -> new float[MR * NR]);

    /**
     * C (rows m, row stride ldc, starting at cOff) = A B^T + bias, or += A B^T when
     * {@code accumulate} (then the bias is not added).
     */
    static void multiply(int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate) {
        if (m == 0) return;
        int mBlocks = (m + MC - 1) / MC;
        int target = Parallel.THREADS * 4;
        int nSplit = Math.max(1, Math.min(b.panels, (target + mBlocks - 1) / mBlocks));
        int perTask = (b.panels + nSplit - 1) / nSplit;
        int nTasks = (b.panels + perTask - 1) / perTask;
        Parallel.forEach(mBlocks * nTasks, t -> {
            int m0 = (t / nTasks) * MC, mc = Math.min(MC, m - m0);
            int p0 = (t % nTasks) * perTask, p1 = Math.min(b.panels, p0 + perTask);
            block(a.rows(m0, mc), mc, b, p0, p1, c, cOff + m0 * ldc, ldc, accumulate);
        });
    }

    /** The same product on the calling thread only (for callers that parallelise at a coarser grain). */
    static void multiplySerial(int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate) {
        for (int m0 = 0; m0 < m; m0 += MC) {
            int mc = Math.min(MC, m - m0);
            block(a.rows(m0, mc), mc, b, 0, b.panels, c, cOff + m0 * ldc, ldc, accumulate);
        }
    }

    private static final ThreadLocal<float[]> EDGE_A = ThreadLocal.withInitial(() -> new float[MR * KC]);

    /**
     * Rows [0, mc) of a block times panels [p0, p1), K cut into even slices of at most KC. The
     * kernel broadcasts A straight from its rows (no packing pass: copying A cost ~15% of a
     * GEMM); only a ragged last row group is copied into a zero-padded scratch tile.
     */
    private static void block(Block blk, int mc, Packed b, int p0, int p1, float[] c, int cOff, int ldc, boolean accumulate) {
        int groups = (mc + MR - 1) / MR;
        int slices = (b.k + KC - 1) / KC, step = (b.k + slices - 1) / slices; // even slices: no thin tail
        for (int k0 = 0; k0 < b.k; k0 += step) {
            int kc = Math.min(step, b.k - k0);
            boolean acc = accumulate || k0 > 0;
            float[] bias = acc ? null : b.bias;
            for (int p = p0; p < p1; p++) {
                int cols = Math.min(NR, b.n - p * NR), bOff = p * b.k * NR + k0 * NR;
                for (int g = 0; g < groups; g++) {
                    int rows = Math.min(MR, mc - g * MR), at = cOff + g * MR * ldc + p * NR;
                    float[] a = blk.data();
                    int aOff = blk.offset() + g * MR * blk.lda() + k0, lda = blk.lda();
                    if (rows < MR) { // ragged rows: the same kernel on a zero-padded copy
                        float[] ea = EDGE_A.get();
                        java.util.Arrays.fill(ea, 0f);
                        for (int r = 0; r < rows; r++) System.arraycopy(a, aOff + r * lda, ea, r * kc, kc);
                        a = ea;
                        aOff = 0;
                        lda = kc;
                    }
                    if (rows == MR && cols == NR) {
                        kernel(a, aOff, lda, b.data, bOff, c, at, ldc, kc, acc, bias, p * NR);
                    } else { // ragged edge: run the same kernel on a scratch tile
                        float[] ec = EDGE_C.get();
                        if (acc) for (int r = 0; r < rows; r++) System.arraycopy(c, at + r * ldc, ec, r * NR, cols);
                        kernel(a, aOff, lda, b.data, bOff, ec, 0, NR, kc, acc, bias, p * NR);
                        for (int r = 0; r < rows; r++) System.arraycopy(ec, r * NR, c, at + r * ldc, cols);
                    }
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
