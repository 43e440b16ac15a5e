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
    public Update update(int stepIndex) {
        int t = timestep(stepIndex), prev = previous(stepIndex);
        float[] ac = schedule.alphasCumprod();
        float alphaProd = ac[t], alphaProdPrev = prev >= 0 ? ac[prev] : finalAlphaCumprod();
        float sqrtBetaProd = (float) Math.sqrt(1f - alphaProd), sqrtAlphaProd = (float) Math.sqrt(alphaProd);
        float sqrtAlphaPrev = (float) Math.sqrt(alphaProdPrev), dirCoeff = (float) Math.sqrt(1f - alphaProdPrev);
        // x0 = (x - sqrt(1 - a) e) / sqrt(a); x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) e (eta = 0)
        return new Update(sqrtAlphaPrev / sqrtAlphaProd, dirCoeff - sqrtAlphaPrev * sqrtBetaProd / sqrtAlphaProd, 0f);
    }

    @Override
    public Step step(float[] eps, int stepIndex, float[] sample, float[] noise) {
        float alphaProd = schedule.alphasCumprod()[timestep(stepIndex)];
        float sqrtBetaProd = (float) Math.sqrt(1f - alphaProd), sqrtAlphaProd = (float) Math.sqrt(alphaProd);
        Update u = update(stepIndex);
        float[] prevSample = new float[sample.length], x0 = new float[sample.length];
        for (int i = 0; i < sample.length; i++) {
            x0[i] = (sample[i] - sqrtBetaProd * eps[i]) / sqrtAlphaProd;
            prevSample[i] = u.sample() * sample[i] + u.eps() * eps[i];
        }
        return new Step(prevSample, x0);
    }
}
