package io.refldmseg.scheduler;

/** One denoising update x_t -> x_{t-1} from the model's noise prediction (epsilon). */
public interface Scheduler {
    int[] timesteps();

    /**
     * @param eps    the (guided) noise prediction, same layout as {@code sample}
     * @param noise  N(0,1) draw for stochastic schedulers (DDPM), ignored by DDIM; may be null for DDIM
     * @return the previous sample and the predicted x_0
     */
    Step step(float[] eps, int stepIndex, float[] sample, float[] noise);

    boolean needsNoise();

    /** The update of step {@code stepIndex}, which is linear: what {@link #step} computes, as three coefficients (for a backend to apply). */
    Update update(int stepIndex);

    record Step(float[] prevSample, float[] predOriginal) {
    }

    /** x_{t-1} = sample * x_t + eps * e + noise * n (noise is 0 where no noise is added). */
    record Update(float sample, float eps, float noise) {
    }
}
