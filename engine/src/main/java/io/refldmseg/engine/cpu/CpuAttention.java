package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Multi-head attention on the CPU, one (batch, head, query block) per task. K and V of a head are
 * transposed once into [headDim][Lk] (padded to the vector length) so scores and outputs are
 * vector loops over keys; only one row of scores per query exists at a time.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int QUERY_BLOCK = 64;
    private static final float MASK_BIAS = -10000f;
    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[L]);

    private CpuAttention() {
    }

    static float[] run(float[] q, float[] k, float[] v, int batch, int lq, int lk, int channels, int heads, float[] keyMask) {
        int d = channels / heads;
        int lkPad = (lk + L - 1) / L * L;
        float scale = (float) (1.0 / Math.sqrt(d));
        // per (batch, head): K^T and V^T as [d][lkPad], zero padded
        float[] kt = new float[batch * heads * d * lkPad];
        float[] vt = new float[batch * heads * d * lkPad];
        Parallel.forEach(batch * heads, bh -> {
            int b = bh / heads, h = bh % heads, base = bh * d * lkPad;
            for (int j = 0; j < lk; j++) {
                int src = (b * lk + j) * channels + h * d;
                for (int dd = 0; dd < d; dd++) {
                    kt[base + dd * lkPad + j] = k[src + dd];
                    vt[base + dd * lkPad + j] = v[src + dd];
                }
            }
        });
        // additive bias per key, -inf on the padding
        float[] bias = new float[batch * lkPad];
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < lkPad; j++) {
                float m = keyMask == null || j >= lk ? 1f : keyMask[b * lk + j];
                bias[b * lkPad + j] = j >= lk ? Float.NEGATIVE_INFINITY : (1f - m) * MASK_BIAS;
            }
        }
        boolean masked = keyMask != null;
        float[] out = new float[batch * lq * channels];
        int qBlocks = (lq + QUERY_BLOCK - 1) / QUERY_BLOCK;
        Parallel.forEach(batch * heads * qBlocks, t -> {
            int bh = t / qBlocks, qb = t % qBlocks;
            int b = bh / heads, h = bh % heads, base = bh * d * lkPad;
            float[] s = SCORES.get();
            if (s.length < lkPad) {
                s = new float[lkPad];
                SCORES.set(s);
            }
            for (int i = qb * QUERY_BLOCK, iEnd = Math.min(lq, i + QUERY_BLOCK); i < iEnd; i++) {
                int qOff = (b * lq + i) * channels + h * d;
                scores(q, qOff, kt, base, d, lkPad, scale, masked || lk != lkPad ? bias : null, b * lkPad, s);
                softmaxInPlace(s, lkPad);
                int oOff = (b * lq + i) * channels + h * d;
                for (int dd = 0; dd < d; dd++) out[oOff + dd] = dot(s, vt, base + dd * lkPad, lkPad);
            }
        });
        return out;
    }

    private static void scores(float[] q, int qOff, float[] kt, int base, int d, int lkPad, float scale,
                               float[] bias, int biasOff, float[] s) {
        for (int j = 0; j < lkPad; j += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int dd = 0; dd < d; dd++)
                acc = FloatVector.fromArray(S, kt, base + dd * lkPad + j).fma(FloatVector.broadcast(S, q[qOff + dd]), acc);
            acc = acc.mul(scale);
            if (bias != null) acc = acc.add(FloatVector.fromArray(S, bias, biasOff + j));
            acc.intoArray(s, j);
        }
    }

    /** Softmax over s[0, n) (n a multiple of the vector length), max-subtracted like PyTorch. */
    static void softmaxInPlace(float[] s, int n) {
        FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < n; j += L) mx = mx.max(FloatVector.fromArray(S, s, j));
        float max = mx.reduceLanes(VectorOperators.MAX);
        FloatVector sum = FloatVector.zero(S);
        for (int j = 0; j < n; j += L) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, s, j).sub(max));
            e.intoArray(s, j);
            sum = sum.add(e);
        }
        float inv = 1f / VectorMath.sum(sum);
        for (int j = 0; j < n; j += L) FloatVector.fromArray(S, s, j).mul(inv).intoArray(s, j);
    }

    private static float dot(float[] p, float[] v, int vOff, int n) {
        FloatVector acc = FloatVector.zero(S);
        for (int j = 0; j < n; j += L) acc = FloatVector.fromArray(S, p, j).fma(FloatVector.fromArray(S, v, vOff + j), acc);
        return VectorMath.sum(acc);
    }
}
