package io.refldmseg.scheduler;

/**
 * SD1.5's training noise schedule ("scaled_linear", beta 0.00085 -> 0.012, 1000 steps) computed
 * the way diffusers does in float32: linspace of sqrt(beta) squared, alphas_cumprod as a
 * cumulative product (PyTorch's CPU cumprod accumulates in double and rounds each entry).
 */
public record NoiseSchedule(float[] betas, float[] alphasCumprod, int trainSteps, int stepsOffset) {

    public static NoiseSchedule stableDiffusion() {
        return scaledLinear(0.00085, 0.012, 1000, 1);
    }

    public static NoiseSchedule scaledLinear(double betaStart, double betaEnd, int trainSteps, int stepsOffset) {
        float[] sqrtBetas = linspace((float) Math.sqrt(betaStart), (float) Math.sqrt(betaEnd), trainSteps);
        float[] betas = new float[trainSteps], cumprod = new float[trainSteps];
        double acc = 1;
        for (int i = 0; i < trainSteps; i++) {
            betas[i] = sqrtBetas[i] * sqrtBetas[i];
            acc *= (float) (1f - betas[i]);
            cumprod[i] = (float) acc;
        }
        return new NoiseSchedule(betas, cumprod, trainSteps, stepsOffset);
    }

    /**
     * torch.linspace in float32 exactly as PyTorch's AVX2 CPU kernel computes it (what produced
     * SD's reference schedule): chunks of 8 values, each chunk's base start + step * i0 (or, in the
     * second half, end - step * (n - 1 - i0)) formed with a fused multiply-add, then base + j * step.
     * The plain formula differs in the last bit for about a quarter of the betas.
     */
    static float[] linspace(float start, float end, int n) {
        final int chunk = 8;
        float[] out = new float[n];
        float step = (end - start) / (n - 1);
        for (int i0 = 0; i0 < n; i0 += chunk) {
            float base = i0 < n / 2 ? Math.fma(step, (float) i0, start) : Math.fma(-step, (float) (n - 1 - i0), end);
            for (int j = 0; j < chunk && i0 + j < n; j++) out[i0 + j] = base + step * j;
        }
        return out;
    }

    /** "leading" spacing plus steps_offset: 20 steps -> 951, 901, ..., 1. */
    public int[] timesteps(int inferenceSteps) {
        if (inferenceSteps <= 0 || inferenceSteps > trainSteps)
            throw new IllegalArgumentException("steps must be in 1.." + trainSteps + ", got " + inferenceSteps);
        int ratio = trainSteps / inferenceSteps;
        int[] t = new int[inferenceSteps];
        for (int i = 0; i < inferenceSteps; i++) t[i] = (inferenceSteps - 1 - i) * ratio + stepsOffset;
        return t;
    }
}
