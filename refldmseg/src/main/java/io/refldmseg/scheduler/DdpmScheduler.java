package io.refldmseg.scheduler;

/**
 * diffusers DDPMScheduler (v0.25) with SD1.5's config: epsilon prediction, "fixed_small"
 * variance, no sample clipping, leading spacing. Noise is injected by the caller so runs can be
 * reproduced exactly; it is added at every step with t > 0, including t = 1 where the variance
 * clamps to 1e-20.
 */
public final class DdpmScheduler extends LeadingScheduler {
    public DdpmScheduler(NoiseSchedule schedule, int steps) {
        super(schedule, steps);
    }

    @Override
    public boolean needsNoise() {
        return true;
    }

    @Override
    public Update update(int stepIndex) {
        int t = timestep(stepIndex), prev = previous(stepIndex);
        float[] ac = schedule.alphasCumprod();
        float alphaProd = ac[t], alphaProdPrev = prev >= 0 ? ac[prev] : 1f;
        float betaProd = 1f - alphaProd, betaProdPrev = 1f - alphaProdPrev;
        float currentAlpha = alphaProd / alphaProdPrev, currentBeta = 1f - currentAlpha;
        float sqrtBetaProd = (float) Math.sqrt(betaProd), sqrtAlphaProd = (float) Math.sqrt(alphaProd);
        float origCoeff = (float) Math.sqrt(alphaProdPrev) * currentBeta / betaProd;
        float sampleCoeff = (float) Math.sqrt(currentAlpha) * betaProdPrev / betaProd;
        // x0 = (x - sqrt(1 - a) e) / sqrt(a); x_prev = origCoeff x0 + sampleCoeff x + std n
        float std = t > 0 ? (float) Math.sqrt(Math.max(betaProdPrev / betaProd * currentBeta, 1e-20f)) : 0f;
        return new Update(origCoeff / sqrtAlphaProd + sampleCoeff, -origCoeff * sqrtBetaProd / sqrtAlphaProd, std);
    }

    @Override
    public Step step(float[] eps, int stepIndex, float[] sample, float[] noise) {
        int t = timestep(stepIndex);
        float alphaProd = schedule.alphasCumprod()[t];
        float sqrtBetaProd = (float) Math.sqrt(1f - alphaProd), sqrtAlphaProd = (float) Math.sqrt(alphaProd);
        if (t > 0 && (noise == null || noise.length != sample.length))
            throw new IllegalArgumentException("DDPM step at t=" + t + " needs a noise draw of " + sample.length + " values");
        Update u = update(stepIndex);
        float[] prevSample = new float[sample.length], x0 = new float[sample.length];
        for (int i = 0; i < sample.length; i++) {
            x0[i] = (sample[i] - sqrtBetaProd * eps[i]) / sqrtAlphaProd;
            float p = u.sample() * sample[i] + u.eps() * eps[i];
            prevSample[i] = t > 0 ? p + u.noise() * noise[i] : p;
        }
        return new Step(prevSample, x0);
    }
}
