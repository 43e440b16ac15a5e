package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector helpers built only from IEEE-exact lane operations (add, mul, fma, compare, lane moves),
 * so they give the same bits interpreted, C1- or C2-compiled. The Vector API's own
 * {@code lanewise(EXP)} and {@code reduceLanes(ADD)} do not: their intrinsics and Java fallbacks
 * round differently, which made results depend on JIT warm-up.
 */
final class VectorMath {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    @SuppressWarnings("unchecked")
    private static final VectorShuffle<Float>[] ROTATE = new VectorShuffle[L];

    static {
        for (int step = 1; step < L; step *= 2) {
            int s = step;
            ROTATE[step] = VectorShuffle.fromOp(S, i -> (i + s) % L);
        }
    }

    private VectorMath() {
    }

    /** Sum of the lanes in a fixed pairwise order. */
    static float sum(FloatVector v) {
        for (int step = L / 2; step >= 1; step /= 2) v = v.add(v.rearrange(ROTATE[step]));
        return v.lane(0);
    }

    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f; // 1.5 * 2^23: adding it rounds to an integer
    private static final float MIN_ARG = -87.33654f, MAX_ARG = 88.0f;

    /** e^x per lane (Cephes expf polynomial, about 1 ulp) for x <= 88; 0 below the float range (including -inf). */
    static FloatVector exp(FloatVector x) {
        return exp(x.max(MIN_ARG).min(MAX_ARG), x.compare(VectorOperators.LT, MIN_ARG));
    }

    /**
     * {@link #exp} for arguments known to be at most 88, such as a softmax's x - max: the same bits
     * there, without the clamps (Java's NaN-exact min and max are several instructions each; this
     * is a third faster).
     */
    static FloatVector expAtMost88(FloatVector x) {
        return exp(x, x.compare(VectorOperators.LT, MIN_ARG));
    }

    /** The polynomial on x clamped into its range ({@code xc}); lanes in {@code under} become 0. */
    private static FloatVector exp(FloatVector xc, VectorMask<Float> under) {
        FloatVector t = xc.fma(c(LOG2E), c(ROUND));
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(c(-LN2_HI), xc);
        r = n.fma(c(-LN2_LO), r);
        FloatVector p = c(1.9875691500e-4f);
        p = p.fma(r, c(1.3981999507e-3f));
        p = p.fma(r, c(8.3334519073e-3f));
        p = p.fma(r, c(4.1665795894e-2f));
        p = p.fma(r, c(1.6666665459e-1f));
        p = p.fma(r, c(5.0000001201e-1f));
        FloatVector e = p.mul(r.mul(r)).add(r).add(1f);
        FloatVector scale = ((IntVector) t.reinterpretAsInts()).sub(0x4B400000 - 127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return e.mul(scale).blend(0f, under);
    }

    private static FloatVector c(float v) {
        return FloatVector.broadcast(S, v);
    }

    private static final float ERF_P = 0.3275911f, ERF_A1 = 0.254829592f, ERF_A2 = -0.284496736f, ERF_A3 = 1.421413741f,
            ERF_A4 = -1.453152027f, ERF_A5 = 1.061405429f, INV_SQRT2 = 0.70710678118654752f;

    /** erf per lane (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7). */
    static FloatVector erf(FloatVector z) {
        FloatVector a = z.abs();
        FloatVector t = c(1f).div(a.fma(c(ERF_P), c(1f)));
        FloatVector poly = c(ERF_A5).fma(t, c(ERF_A4)).fma(t, c(ERF_A3)).fma(t, c(ERF_A2)).fma(t, c(ERF_A1)).mul(t);
        FloatVector y = c(1f).sub(poly.mul(exp(a.mul(a).neg())));
        return y.blend(y.neg(), z.compare(VectorOperators.LT, 0f));
    }

    /** GELU, erf form: x / 2 * (1 + erf(x / sqrt 2)). */
    static FloatVector gelu(FloatVector x) {
        return x.mul(0.5f).mul(erf(x.mul(INV_SQRT2)).add(1f));
    }

    /** x * sigmoid(k x). */
    static FloatVector xSigmoid(FloatVector x, float k) {
        return x.div(exp(x.mul(-k)).add(1f));
    }
}
