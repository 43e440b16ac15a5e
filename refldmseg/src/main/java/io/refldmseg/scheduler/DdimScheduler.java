package io.refldmseg.scheduler;

/**
 * diffusers DDIMScheduler (v0.25), eta = 0 (deterministic), epsilon prediction, leading spacing,
 * set_alpha_to_one = false: past the last step alpha_prod_prev = alphas_cumprod[0].
 */
public final class DdimScheduler extends LeadingScheduler {
    public DdimScheduler(NoiseSchedule schedule, int steps) {
        super(schedule, steps);
    }

    public float finalAlphaCumprod() {
        return schedule.alphasCumprod()[0];
    }

    @Override
    public boolean needsNoise() {
        return false;
    }

    @Override
    public Step step(float[] eps, int stepIndex, float[] sample, float[] noise) {
        int t = timestep(stepIndex), prev = previous(stepIndex);
        float[] ac = schedule.alphasCumprod();
        float alphaProd = ac[t], alphaProdPrev = prev >= 0 ? ac[prev] : finalAlphaCumprod();
        float sqrtBetaProd = (float) Math.sqrt(1f - alphaProd), sqrtAlphaProd = (float) Math.sqrt(alphaProd);
        float sqrtAlphaPrev = (float) Math.sqrt(alphaProdPrev), dirCoeff = (float) Math.sqrt(1f - alphaProdPrev);
        float[] prevSample = new float[sample.length], x0 = new float[sample.length];
        for (int i = 0; i < sample.length; i++) {
            x0[i] = (sample[i] - sqrtBetaProd * eps[i]) / sqrtAlphaProd;
            prevSample[i] = sqrtAlphaPrev * x0[i] + dirCoeff * eps[i];
        }
        return new Step(prevSample, x0);
    }
}
