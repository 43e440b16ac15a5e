package io.refldmseg.engine;

/**
 * The two halves of attention for variants that need the probabilities: scores (softmax of
 * q k^T / sqrt(d) + bias, per head) and attend (p v). Plain loops over one (batch, head) pair
 * at a time, so a backend can run pairs in parallel; the softmax is computed in double.
 * Heads are packed in channels as everywhere (channel = head * d + j).
 */
public final class UnfusedAttention {
    private UnfusedAttention() {
    }

    /** The bias a key mask [B, Lk] (1 keep, 0 masked) stands for in the fused op: (1 - m) * -10000, as [B, 1, 1, Lk]. */
    public static float[] hardMaskBias(float[] keyMask) {
        float[] bias = new float[keyMask.length];
        for (int i = 0; i < bias.length; i++) bias[i] = (1f - keyMask[i]) * -10000f;
        return bias;
    }

    /** Checks q [B, Lq, C], k [B, Lk, C], heads | C, and bias [B|1, H|1, Lq|1, Lk] (or null); returns the bias dims. */
    public static int[] checkScores(Tensor q, Tensor k, int heads, Tensor bias) {
        int b = q.dim(0), lq = q.dim(1), c = q.dim(2), lk = k.dim(1);
        if (q.rank() != 3 || k.rank() != 3 || k.dim(0) != b || k.dim(2) != c || heads <= 0 || c % heads != 0)
            throw new IllegalArgumentException("attention scores: q " + q + ", k " + k + ", " + heads + " heads");
        if (bias == null) return null;
        int[] s = bias.shape();
        if (s.length != 4 || (s[0] != 1 && s[0] != b) || (s[1] != 1 && s[1] != heads) || (s[2] != 1 && s[2] != lq) || s[3] != lk)
            throw new IllegalArgumentException("attention bias " + bias + " is not broadcastable to [" + b + ", " + heads + ", " + lq + ", " + lk + "]");
        return s;
    }

    public static void checkAttend(Tensor p, Tensor v, int heads) {
        if (p.rank() != 4 || v.rank() != 3 || p.dim(0) != v.dim(0) || p.dim(1) != heads || p.dim(3) != v.dim(1) || v.dim(2) % heads != 0)
            throw new IllegalArgumentException("attend: probabilities " + p + ", values " + v + ", " + heads + " heads");
    }

    /**
     * Probabilities of (batch, head) pairs [from, to) (pair = b * heads + h) into {@code out}
     * [B, H, Lq, Lk]. A row whose every score is -infinity gets all zeros.
     */
    public static void scores(float[] q, float[] k, int lq, int lk, int c, int heads, float[] bias, int[] biasShape,
                              float[] out, int from, int to) {
        int d = c / heads;
        double scale = 1.0 / Math.sqrt(d);
        double[] row = new double[lk];
        for (int pair = from; pair < to; pair++) {
            int b = pair / heads, h = pair % heads;
            for (int i = 0; i < lq; i++) {
                int qo = (b * lq + i) * c + h * d;
                int bo = bias == null ? 0 : biasRow(biasShape, b, h, i) ;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < lk; j++) {
                    int ko = (b * lk + j) * c + h * d;
                    float dot = 0f;
                    for (int x = 0; x < d; x++) dot = Math.fma(q[qo + x], k[ko + x], dot);
                    double s = dot * scale + (bias == null ? 0.0 : bias[bo + j]);
                    row[j] = s;
                    if (s > max) max = s;
                }
                int o = ((b * heads + h) * lq + i) * lk;
                if (max == Double.NEGATIVE_INFINITY) {
                    java.util.Arrays.fill(out, o, o + lk, 0f);
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < lk; j++) sum += row[j] = Math.exp(row[j] - max);
                for (int j = 0; j < lk; j++) out[o + j] = (float) (row[j] / sum);
            }
        }
    }

    private static int biasRow(int[] s, int b, int h, int i) {
        int bb = s[0] == 1 ? 0 : b, hh = s[1] == 1 ? 0 : h, ii = s[2] == 1 ? 0 : i;
        return ((bb * s[1] + hh) * s[2] + ii) * s[3];
    }

    /** out [B, Lq, C] += p v for (batch, head) pairs [from, to); {@code out} starts zeroed. */
    public static void attend(float[] p, float[] v, int lq, int lk, int c, int heads, float[] out, int from, int to) {
        int d = c / heads;
        for (int pair = from; pair < to; pair++) {
            int b = pair / heads, h = pair % heads;
            for (int i = 0; i < lq; i++) {
                int po = ((b * heads + h) * lq + i) * lk, oo = (b * lq + i) * c + h * d;
                for (int j = 0; j < lk; j++) {
                    float w = p[po + j];
                    if (w == 0f) continue;
                    int vo = (b * lk + j) * c + h * d;
                    for (int x = 0; x < d; x++) out[oo + x] = Math.fma(w, v[vo + x], out[oo + x]);
                }
            }
        }
    }
}
