package io.refldmseg.engine;

/**
 * The sinusoidal timestep embedding of diffusers' {@code get_timestep_embedding}, computed on the
 * host (it is a few thousand values) and shared by every backend so they agree bit for bit.
 */
public final class TimestepEmbedding {
    private TimestepEmbedding() {
    }

    /** [timesteps.length, dim], row-major: sin then cos halves, or cos then sin when {@code flipSinToCos}. */
    public static float[] sinusoidal(float[] timesteps, int dim, boolean flipSinToCos, float downscaleFreqShift) {
        int half = dim / 2;
        float[] y = new float[timesteps.length * dim];
        float logMax = (float) -Math.log(10000);
        for (int t = 0; t < timesteps.length; t++) {
            for (int i = 0; i < half; i++) {
                float exponent = logMax * i / (half - downscaleFreqShift);
                float arg = timesteps[t] * (float) Math.exp(exponent);
                float sin = (float) Math.sin(arg), cos = (float) Math.cos(arg);
                y[t * dim + i] = flipSinToCos ? cos : sin;
                y[t * dim + half + i] = flipSinToCos ? sin : cos;
            }
        }
        return y;
    }
}
