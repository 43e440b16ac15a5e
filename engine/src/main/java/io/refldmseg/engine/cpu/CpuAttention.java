package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Multi-head attention on the CPU as two products per (batch, head, block of queries), both on the
 * GEMM kernels. Where the head dim is whole B panels the products are direct, with A read in place:
 * scores S = Q K^T (the block's query rows as they lie in q, times K^T packed once per head), a
 * softmax along each score row, then out = P V (V packed once per head) written straight into the
 * head's columns of the output. Other head dims (SD's 40; 80 with AVX-512) take the transposed products (see
 * {@link #transposed}). Either way the softmax's division is applied to the output, only one block's
 * scores exist at a time (no Lq x Lk matrix), every query's arithmetic is its own alone, in key
 * order, and blocks never span samples, so a batch of three gives each sample the bits a batch of
 * one gives it.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final float MASK_BIAS = -10000f;
    /** Scores under this in size put a masked key's exp(score + MASK_BIAS - max) below fp32's range (e^-104): 2 x 4096 - 10000 < -104. */
    private static final double SCORE_BOUND = 4096;
    /** Queries per task of the transposed products: one B panel of the micro-kernel (two vectors). */
    private static final int QUERIES = Gemm.NR;
    /** Scores a task keeps at once (floats): its block of queries times the keys stays in L2. */
    private static final int SCORES_PER_TASK = 1 << 16;
    private static final int MAX_QUERIES_PER_TASK = 8 * Gemm.MR;

    /** One task's scratch: its scores (then probabilities), 1 / softmax sum per query; Q^T and out^T of the transposed products. */
    private static final class Scratch {
        float[] scores = new float[0], inverseSums = new float[0], queries = new float[0], out = new float[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private CpuAttention() {
    }

    /** out [batch, lq, channels] (every element written) = softmax(q k^T / sqrt(d) + mask bias) v per head. */
    static void run(Parallel par, float[] q, float[] k, float[] v, int batch, int lq, int lk, int channels, int heads, float[] keyMask, float[] out) {
        if (keyMask != null && runOnKeptKeys(par, q, k, v, batch, lq, lk, channels, heads, keyMask, out)) return;
        products(par, q, k, v, batch, lq, lk, channels, heads, keyMask == null ? null : bias(keyMask), out);
    }

    /** The additive bias per key: (1 - m) * -10000, as diffusers adds it. */
    private static float[] bias(float[] keyMask) {
        float[] bias = new float[keyMask.length];
        for (int i = 0; i < bias.length; i++) bias[i] = (1f - keyMask[i]) * MASK_BIAS;
        return bias;
    }

    private static void products(Parallel par, float[] q, float[] k, float[] v, int batch, int lq, int lk, int channels, int heads, float[] bias, float[] out) {
        if ((channels / heads) % Gemm.NR == 0) direct(par, q, k, v, batch, lq, lk, channels, heads, bias, out);
        else transposed(par, q, k, v, batch, lq, lk, channels, heads, bias, out);
    }

    /**
     * A key of mask 0 has the bias -10000. Where its sample also has a key of mask 1 and no score is
     * {@link #SCORE_BOUND} or more in size, exp(score - 10000 - row max) is under fp32's smallest
     * subnormal, exactly 0: the key adds nothing to the softmax or to P V. Then each sample runs on
     * its other keys alone (Ref LDM-Seg's key masks drop most of the support's tokens); the sums then
     * group fewer terms, equal to rounding. Returns false, having run nothing, where that does not hold
     * for every sample or no key would be dropped.
     */
    private static boolean runOnKeptKeys(Parallel par, float[] q, float[] k, float[] v, int batch, int lq, int lk, int channels, int heads,
                                         float[] keyMask, float[] out) {
        int[] kept = new int[batch];
        boolean dropsAny = false;
        for (int b = 0; b < batch; b++) {
            boolean hasWholeKey = false;
            for (int j = 0; j < lk; j++) {
                float m = keyMask[b * lk + j];
                if (m == 1f) hasWholeKey = true;
                if (m != 0f) kept[b]++;
            }
            if (!hasWholeKey) return false;
            dropsAny |= kept[b] < lk;
        }
        if (!dropsAny) return false;
        // |q_h . k_h| / sqrt(d) <= |q_h| |k_h| / sqrt(d), and a head's part of a row is no longer than the row
        double bound = maxRowNorm(q, batch * lq, channels) * maxRowNorm(k, batch * lk, channels) / Math.sqrt(channels / heads);
        if (!(bound < SCORE_BOUND)) return false;
        int rows = lq * channels;
        for (int b = 0; b < batch; b++) {
            int n = kept[b];
            float[] kb = new float[n * channels], vb = new float[n * channels], mb = new float[n];
            for (int j = 0, i = 0; j < lk; j++) {
                float m = keyMask[b * lk + j];
                if (m == 0f) continue;
                System.arraycopy(k, (b * lk + j) * channels, kb, i * channels, channels);
                System.arraycopy(v, (b * lk + j) * channels, vb, i * channels, channels);
                mb[i++] = m;
            }
            // a batch of one: the sample's queries and output are the arrays themselves
            float[] qb = batch == 1 ? q : java.util.Arrays.copyOfRange(q, b * rows, (b + 1) * rows), ob = batch == 1 ? out : new float[rows];
            products(par, qb, kb, vb, 1, lq, n, channels, heads, bias(mb), ob);
            if (ob != out) System.arraycopy(ob, 0, out, b * rows, rows);
        }
        return true;
    }

    private static double maxRowNorm(float[] x, int rows, int channels) {
        double max = 0;
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int c = 0; c < channels; c++) sum += (double) x[r * channels + c] * x[r * channels + c];
            max = Math.max(max, sum);
        }
        return Math.sqrt(max);
    }

    /** The direct products, for head dims of whole B panels (the tower's 64 and SD's 160; SD's 80 too with AVX2's 16-column panels). */
    private static void direct(Parallel par, float[] q, float[] k, float[] v, int batch, int lq, int lk, int channels, int heads, float[] keyBias, float[] out) {
        int d = channels / heads;
        float scale = (float) (1.0 / Math.sqrt(d));
        Gemm.Packed[] keysT = new Gemm.Packed[batch * heads], values = new Gemm.Packed[batch * heads];
        par.forEach(batch * heads, bh -> {
            int at = bh / heads * lk * channels + bh % heads * d;
            keysT[bh] = Gemm.Packed.ofRows(k, at, channels, lk, d);
            values[bh] = Gemm.Packed.ofColumns(v, at, channels, lk, d);
        });
        int stride = (lk + Gemm.NR - 1) / Gemm.NR * Gemm.NR; // a score row: lk keys, then padding up to whole vectors
        int rows = Math.max(Gemm.MR, Math.min(MAX_QUERIES_PER_TASK, SCORES_PER_TASK / stride / Gemm.MR * Gemm.MR));
        int blocks = (lq + rows - 1) / rows;
        par.forEach(batch * heads * blocks, t -> {
            int bh = t / blocks, b = bh / heads, h = bh % heads, q0 = t % blocks * rows, n = Math.min(rows, lq - q0);
            Scratch s = SCRATCH.get();
            float[] st = s.scores = grown(s.scores, rows * stride), inverseSums = s.inverseSums = grown(s.inverseSums, rows);
            int at = (b * lq + q0) * channels + h * d;
            Gemm.multiplySerial(n, Gemm.dense(q, at, channels), keysT[bh], st, 0, stride, false);
            for (int i = 0; i < n; i++) inverseSums[i] = softmaxRow(st, i * stride, lk, stride, scale, keyBias, b * lk);
            Gemm.multiplySerial(n, Gemm.dense(st, 0, stride), values[bh], out, at, channels, false);
            for (int i = 0; i < n; i++) scaleRow(out, at + i * channels, d, inverseSums[i]);
        });
    }

    /** out[o, o + d) *= factor, d a multiple of the vector length (whole B panels). */
    private static void scaleRow(float[] out, int o, int d, float factor) {
        for (int dd = 0; dd < d; dd += L) FloatVector.fromArray(S, out, o + dd).mul(factor).intoArray(out, o + dd);
    }

    /**
     * The transposed products, for head dims that are not whole B panels (SD's 40): S^T [keys][queries]
     * = K (Q scale)^T with a panel of NR queries as B, the softmax down its columns (every vector lane
     * a different query), out^T [head dim][queries] = V^T P^T, which reads P^T as the B panel it
     * already is; V^T's 6-row groups waste less of a 40-dim head than 16-column panels of V would.
     */
    private static void transposed(Parallel par, float[] q, float[] k, float[] v, int batch, int lq, int lk, int channels, int heads, float[] keyBias, float[] out) {
        int d = channels / heads;
        float scale = (float) (1.0 / Math.sqrt(d));
        Gemm.PackedRows[] keys = new Gemm.PackedRows[batch * heads], valuesT = new Gemm.PackedRows[batch * heads];
        par.forEach(batch * heads, bh -> {
            int at = bh / heads * lk * channels + bh % heads * d;
            keys[bh] = Gemm.packRows(k, at, channels, 1, lk, d, null);
            valuesT[bh] = Gemm.packRows(v, at, 1, channels, d, lk, null);
        });
        int panels = (lq + QUERIES - 1) / QUERIES;
        par.forEach(batch * heads * panels, t -> {
            int bh = t / panels, b = bh / heads, h = bh % heads, q0 = t % panels * QUERIES, n = Math.min(QUERIES, lq - q0);
            Scratch s = SCRATCH.get();
            s.inverseSums = grown(s.inverseSums, QUERIES);
            int qOff = (b * lq + q0) * channels + h * d;
            float[] qt = s.queries = grown(s.queries, d * QUERIES);
            for (int i = 0; i < QUERIES; i++)
                for (int dd = 0; dd < d; dd++) qt[dd * QUERIES + i] = i < n ? q[qOff + i * channels + dd] * scale : 0f;
            float[] st = s.scores = grown(s.scores, Gemm.groupedRows(lk) * QUERIES);
            Gemm.multiplyPanel(keys[bh], 0, d, qt, 0, st, 0, QUERIES, false);
            softmaxColumns(st, lk, keyBias, b * lk, s.inverseSums);
            float[] ot = s.out = grown(s.out, Gemm.groupedRows(d) * QUERIES);
            // 257 keys (the tower, 256 context tokens + 1) are one slice, not 256 + a slice of one key
            int slice = lk <= Gemm.MAX_SINGLE_SLICE ? lk : Gemm.KC;
            for (int k0 = 0; k0 < lk; k0 += slice)
                Gemm.multiplyPanel(valuesT[bh], k0, Math.min(slice, lk - k0), st, k0 * QUERIES, ot, 0, QUERIES, k0 > 0);
            for (int i = 0; i < n; i++) {
                float inverseSum = s.inverseSums[i];
                for (int dd = 0; dd < d; dd++) out[qOff + i * channels + dd] = ot[dd * QUERIES + i] * inverseSum;
            }
        });
    }

    /**
     * In place over one score row st[off, off + lk): p = exp(scale s + bias - max), the padding up to
     * {@code stride} set to -inf first so every pass runs whole vectors (exp gives it 0); returns 1 / sum.
     * Each pass is a small method that takes and returns no vectors: with two exps in a loop, or a
     * vector returned from a call the JIT did not inline, vectors became heap objects.
     */
    private static float softmaxRow(float[] st, int off, int lk, int stride, float scale, float[] bias, int biasOff) {
        int padded = (lk + L - 1) / L * L;
        scaleAndBias(st, off, lk, scale, bias, biasOff);
        java.util.Arrays.fill(st, off + lk, off + padded, Float.NEGATIVE_INFINITY);
        float max = rowMax(st, off, padded);
        return 1f / expAndSum(st, off, padded, max);
    }

    private static void scaleAndBias(float[] st, int off, int lk, float scale, float[] bias, int biasOff) {
        int j = 0;
        if (bias == null) {
            for (; j + L <= lk; j += L) FloatVector.fromArray(S, st, off + j).mul(scale).intoArray(st, off + j);
            for (; j < lk; j++) st[off + j] *= scale;
        } else {
            FloatVector factor = FloatVector.broadcast(S, scale);
            for (; j + L <= lk; j += L)
                FloatVector.fromArray(S, st, off + j).fma(factor, FloatVector.fromArray(S, bias, biasOff + j)).intoArray(st, off + j);
            for (; j < lk; j++) st[off + j] = Math.fma(st[off + j], scale, bias[biasOff + j]);
        }
    }

    /**
     * The max of st[off, off + n) (n whole vectors), two vectors at a time into separate maxima: Java's
     * max (NaN and -0 rules) is a chain of several instructions, and one running max made the loop as
     * slow as the exp.
     */
    private static float rowMax(float[] st, int off, int n) {
        FloatVector m0 = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY), m1 = m0;
        int j = 0;
        for (; j + 2 * L <= n; j += 2 * L) {
            m0 = m0.max(FloatVector.fromArray(S, st, off + j));
            m1 = m1.max(FloatVector.fromArray(S, st, off + j + L));
        }
        if (j < n) m0 = m0.max(FloatVector.fromArray(S, st, off + j));
        return m0.max(m1).reduceLanes(VectorOperators.MAX);
    }

    /** p = exp(s - max) over st[off, off + n) (n whole vectors), in place; returns the sum. */
    private static float expAndSum(float[] st, int off, int n, float max) {
        FloatVector sum = FloatVector.zero(S);
        for (int j = 0; j < n; j += L) {
            FloatVector e = VectorMath.expAtMost88(FloatVector.fromArray(S, st, off + j).sub(max));
            e.intoArray(st, off + j);
            sum = sum.add(e);
        }
        return VectorMath.sum(sum);
    }

    /**
     * In place over the first lk rows of a [keys][NR queries] score panel: p = exp(s + bias - max)
     * per column; writes 1 / sum of each column to {@code inverseSums}. One vector of columns at a
     * time, each pass a small method that takes and returns no vectors: with two exps in a loop,
     * or a vector returned from a call the JIT did not inline, vectors became heap objects (the
     * attention of a 16x16 latent ran 1.3 or 1.9 ms depending on the JIT's choices).
     */
    private static void softmaxColumns(float[] st, int lk, float[] bias, int biasOff, float[] inverseSums) {
        for (int lane0 = 0; lane0 < QUERIES; lane0 += L) {
            if (bias != null) addRowBias(st, lk, lane0, bias, biasOff);
            columnMax(st, lk, lane0, inverseSums);
            expAndInverseSum(st, lk, lane0, inverseSums);
        }
    }

    private static void addRowBias(float[] st, int lk, int lane0, float[] bias, int biasOff) {
        for (int j = 0, at = lane0; j < lk; j++, at += QUERIES)
            FloatVector.fromArray(S, st, at).add(bias[biasOff + j]).intoArray(st, at);
    }

    /**
     * max[lane0, lane0 + L) = the max of each of those columns over the first lk rows, four rows
     * at a time into separate maxima: Java's max (NaN and -0 rules) is a chain of several
     * instructions, and one running max made this loop as slow as the exp.
     */
    private static void columnMax(float[] st, int lk, int lane0, float[] max) {
        FloatVector m0 = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY), m1 = m0, m2 = m0, m3 = m0;
        int j = 0, at = lane0;
        for (; j + 4 <= lk; j += 4, at += 4 * QUERIES) {
            m0 = m0.max(FloatVector.fromArray(S, st, at));
            m1 = m1.max(FloatVector.fromArray(S, st, at + QUERIES));
            m2 = m2.max(FloatVector.fromArray(S, st, at + 2 * QUERIES));
            m3 = m3.max(FloatVector.fromArray(S, st, at + 3 * QUERIES));
        }
        for (; j < lk; j++, at += QUERIES) m0 = m0.max(FloatVector.fromArray(S, st, at));
        m0.max(m1).max(m2.max(m3)).intoArray(max, lane0);
    }

    /** p = exp(s - max) down the columns [lane0, lane0 + L), in place; the max in, 1 / sum out, both in {@code maxThenInverseSum}. */
    private static void expAndInverseSum(float[] st, int lk, int lane0, float[] maxThenInverseSum) {
        FloatVector max = FloatVector.fromArray(S, maxThenInverseSum, lane0), sum = FloatVector.zero(S);
        for (int j = 0, at = lane0; j < lk; j++, at += QUERIES) {
            FloatVector e = VectorMath.expAtMost88(FloatVector.fromArray(S, st, at).sub(max));
            e.intoArray(st, at);
            sum = sum.add(e);
        }
        FloatVector.broadcast(S, 1f).div(sum).intoArray(maxThenInverseSum, lane0);
    }

    private static float[] grown(float[] a, int n) {
        return a.length >= n ? a : new float[n];
    }

    /** exp(s - max) over s[off, off + n) in place (n a multiple of the vector length); returns the sum. */
    static float expInPlace(float[] s, int off, int n) {
        FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < n; j += L) mx = mx.max(FloatVector.fromArray(S, s, off + j));
        return expAndSum(s, off, n, mx.reduceLanes(VectorOperators.MAX));
    }

    /** Softmax over s[off, off + n) (n a multiple of the vector length), max-subtracted like PyTorch. */
    static void softmaxInPlace(float[] s, int off, int n) {
        float inv = 1f / expInPlace(s, off, n);
        for (int j = 0; j < n; j += L) FloatVector.fromArray(S, s, off + j).mul(inv).intoArray(s, off + j);
    }
}
