package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Multi-head attention on the CPU, one (batch, head, query block) per task. K of a head is
 * transposed once into contiguous panels of two vectors of keys, each [headDim][keys] (a single
 * [headDim][Lk] matrix put all rows of a score pass in one L1 set at Lk = 1024), so scores are a
 * vector loop over keys; V is copied into rows padded to whole three-vector chunks so P V is a
 * vector loop over the head dim with no horizontal sums. Four query rows go together so every K
 * and V load feeds four rows. Only the current rows' scores exist at a time (no Lq x Lk matrix);
 * the softmax's division is applied to the output, not to every probability. Each row's
 * arithmetic is the same whichever rows it is grouped with, so results do not depend on the
 * blocking.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int ROWS = 4;
    /** Keys per score pass (two vectors); K^T of a head is stored in panels of this many keys, [panel][headDim][KEYS]. */
    private static final int KEYS = 2 * L;
    /** Vectors of the head dim per P V pass. */
    private static final int CHUNK = 3;
    private static final int QUERY_BLOCK = 64;
    private static final float MASK_BIAS = -10000f;
    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[0]);

    private CpuAttention() {
    }

    /** out [batch, lq, channels] (every element written) = softmax(q k^T / sqrt(d) + mask bias) v per head. */
    static void run(float[] q, float[] k, float[] v, int batch, int lq, int lk, int channels, int heads, float[] keyMask, float[] out) {
        int d = channels / heads;
        int lkPad = (lk + KEYS - 1) / KEYS * KEYS, dPad = (d + CHUNK * L - 1) / (CHUNK * L) * (CHUNK * L);
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] kt = new float[batch * heads * d * lkPad];
        float[] vp = new float[batch * heads * lk * dPad];
        Parallel.forEach(batch * heads, bh -> {
            int b = bh / heads, h = bh % heads, base = bh * d * lkPad;
            for (int j = 0; j < lk; j++) {
                int src = (b * lk + j) * channels + h * d, dst = base + j / KEYS * d * KEYS + j % KEYS;
                for (int dd = 0; dd < d; dd++) kt[dst + dd * KEYS] = k[src + dd];
                System.arraycopy(v, src, vp, (bh * lk + j) * dPad, d);
            }
        });
        // additive bias per key: (1 - m) * -10000 as diffusers adds it, -inf on the padding
        float[] bias = new float[batch * lkPad];
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < lkPad; j++) {
                float m = keyMask == null || j >= lk ? 1f : keyMask[b * lk + j];
                bias[b * lkPad + j] = j >= lk ? Float.NEGATIVE_INFINITY : (1f - m) * MASK_BIAS;
            }
        }
        boolean addBias = keyMask != null || lk != lkPad;
        int qBlocks = (lq + QUERY_BLOCK - 1) / QUERY_BLOCK;
        Parallel.forEach(batch * heads * qBlocks, t -> {
            int bh = t / qBlocks, qb = t % qBlocks;
            int b = bh / heads, h = bh % heads, base = bh * d * lkPad, vBase = bh * lk * dPad;
            float[] s = SCORES.get();
            if (s.length < ROWS * lkPad) {
                s = new float[ROWS * lkPad];
                SCORES.set(s);
            }
            int[] rowOff = new int[ROWS];
            float[] inverseSums = new float[ROWS], chunk = new float[CHUNK * L];
            for (int i0 = qb * QUERY_BLOCK, iEnd = Math.min(lq, i0 + QUERY_BLOCK); i0 < iEnd; i0 += ROWS) {
                for (int r = 0; r < ROWS; r++) rowOff[r] = (b * lq + Math.min(i0 + r, iEnd - 1)) * channels + h * d;
                scores(q, rowOff, kt, base, d, lkPad, scale, addBias ? bias : null, b * lkPad, s);
                for (int r = 0; r < ROWS; r++) inverseSums[r] = 1f / expInPlace(s, r * lkPad, lkPad);
                values(s, vp, vBase, lk, d, dPad, lkPad, inverseSums, chunk, out, rowOff, Math.min(ROWS, iEnd - i0));
            }
        });
    }

    /** s[r][j] = scale * q_r . k_j (+ bias_j) for four query rows, two key vectors at a time. */
    private static void scores(float[] q, int[] rowOff, float[] kt, int base, int d, int lkPad, float scale,
                               float[] bias, int biasOff, float[] s) {
        int q0 = rowOff[0], q1 = rowOff[1], q2 = rowOff[2], q3 = rowOff[3];
        for (int j = 0; j < lkPad; j += KEYS) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
            for (int dd = 0, kOff = base + j * d; dd < d; dd++, kOff += KEYS) {
                FloatVector k0 = FloatVector.fromArray(S, kt, kOff), k1 = FloatVector.fromArray(S, kt, kOff + L);
                FloatVector x = FloatVector.broadcast(S, q[q0 + dd]);
                a0 = k0.fma(x, a0);
                a1 = k1.fma(x, a1);
                x = FloatVector.broadcast(S, q[q1 + dd]);
                b0 = k0.fma(x, b0);
                b1 = k1.fma(x, b1);
                x = FloatVector.broadcast(S, q[q2 + dd]);
                c0 = k0.fma(x, c0);
                c1 = k1.fma(x, c1);
                x = FloatVector.broadcast(S, q[q3 + dd]);
                e0 = k0.fma(x, e0);
                e1 = k1.fma(x, e1);
            }
            store(a0, a1, scale, bias, biasOff + j, s, j);
            store(b0, b1, scale, bias, biasOff + j, s, lkPad + j);
            store(c0, c1, scale, bias, biasOff + j, s, 2 * lkPad + j);
            store(e0, e1, scale, bias, biasOff + j, s, 3 * lkPad + j);
        }
    }

    private static void store(FloatVector lo, FloatVector hi, float scale, float[] bias, int biasOff, float[] s, int at) {
        lo = lo.mul(scale);
        hi = hi.mul(scale);
        if (bias != null) {
            lo = lo.add(FloatVector.fromArray(S, bias, biasOff));
            hi = hi.add(FloatVector.fromArray(S, bias, biasOff + L));
        }
        lo.intoArray(s, at);
        hi.intoArray(s, at + L);
    }

    /**
     * out_r = (sum_j p_r[j] v_j) / sum_r for the first {@code valid} of the four rows, over the
     * head dim in chunks of three vectors (12 accumulators: three V loads feed twelve FMAs);
     * {@code chunk} is the task's scratch for one scaled chunk of a row.
     */
    private static void values(float[] p, float[] vp, int vBase, int lk, int d, int dPad, int lkPad, float[] inv, float[] chunk,
                               float[] out, int[] rowOff, int valid) {
        for (int c0 = 0; c0 < dPad; c0 += CHUNK * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, b0 = a0, b1 = a0, b2 = a0, c0v = a0, c1 = a0, c2 = a0, e0 = a0, e1 = a0, e2 = a0;
            for (int j = 0, vOff = vBase + c0; j < lk; j++, vOff += dPad) {
                FloatVector v0 = FloatVector.fromArray(S, vp, vOff), v1 = FloatVector.fromArray(S, vp, vOff + L),
                        v2 = FloatVector.fromArray(S, vp, vOff + 2 * L);
                FloatVector x = FloatVector.broadcast(S, p[j]);
                a0 = v0.fma(x, a0);
                a1 = v1.fma(x, a1);
                a2 = v2.fma(x, a2);
                x = FloatVector.broadcast(S, p[lkPad + j]);
                b0 = v0.fma(x, b0);
                b1 = v1.fma(x, b1);
                b2 = v2.fma(x, b2);
                x = FloatVector.broadcast(S, p[2 * lkPad + j]);
                c0v = v0.fma(x, c0v);
                c1 = v1.fma(x, c1);
                c2 = v2.fma(x, c2);
                x = FloatVector.broadcast(S, p[3 * lkPad + j]);
                e0 = v0.fma(x, e0);
                e1 = v1.fma(x, e1);
                e2 = v2.fma(x, e2);
            }
            int len = Math.min(CHUNK * L, d - c0);
            storeRow(a0, a1, a2, inv[0], chunk, out, rowOff[0] + c0, len);
            if (valid > 1) storeRow(b0, b1, b2, inv[1], chunk, out, rowOff[1] + c0, len);
            if (valid > 2) storeRow(c0v, c1, c2, inv[2], chunk, out, rowOff[2] + c0, len);
            if (valid > 3) storeRow(e0, e1, e2, inv[3], chunk, out, rowOff[3] + c0, len);
        }
    }

    /** Scales a chunk of one output row and writes its first {@code len} values (the rest is head-dim padding). */
    private static void storeRow(FloatVector x0, FloatVector x1, FloatVector x2, float inv, float[] chunk, float[] out, int at, int len) {
        x0.mul(inv).intoArray(chunk, 0);
        x1.mul(inv).intoArray(chunk, L);
        x2.mul(inv).intoArray(chunk, 2 * L);
        System.arraycopy(chunk, 0, out, at, len);
    }

    /** exp(s - max) over s[off, off + n) in place (n a multiple of the vector length); returns the sum. */
    static float expInPlace(float[] s, int off, int n) {
        FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < n; j += L) mx = mx.max(FloatVector.fromArray(S, s, off + j));
        float max = mx.reduceLanes(VectorOperators.MAX);
        FloatVector sum = FloatVector.zero(S);
        for (int j = 0; j < n; j += L) {
            FloatVector e = VectorMath.expAtMost88(FloatVector.fromArray(S, s, off + j).sub(max));
            e.intoArray(s, off + j);
            sum = sum.add(e);
        }
        return VectorMath.sum(sum);
    }

    /** Softmax over s[off, off + n) (n a multiple of the vector length), max-subtracted like PyTorch. */
    static void softmaxInPlace(float[] s, int off, int n) {
        float inv = 1f / expInPlace(s, off, n);
        for (int j = 0; j < n; j += L) FloatVector.fromArray(S, s, off + j).mul(inv).intoArray(s, off + j);
    }
}
