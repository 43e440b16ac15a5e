package io.refldmseg.pipeline;

import io.refldmseg.engine.Layouts;
import io.refldmseg.engine.Tensor;

import java.util.random.RandomGenerator;

/** The Gaussian noise a request uses: supplied from outside (NCHW, to match another implementation) or drawn. */
final class Noise {
    private Noise() {
    }


    /** Supplied noise (NCHW, converted to channels-last) or a fresh N(0,1) draw shaped like {@code like}. */
    static float[] nhwc(float[] supplied, Tensor like, RandomGenerator rng, String what) {
        int[] s = like.shape();
        int n = Math.toIntExact(like.numel());
        float[] nchw;
        if (supplied != null) {
            if (supplied.length != n) throw new IllegalArgumentException(what + " has " + supplied.length + " values, " + n + " needed");
            nchw = supplied;
        } else {
            nchw = new float[n];
            for (int i = 0; i < n; i++) nchw[i] = (float) rng.nextGaussian();
        }
        return Layouts.nchwToNhwc(nchw, s[0], s[3], s[1], s[2]);
    }
}
