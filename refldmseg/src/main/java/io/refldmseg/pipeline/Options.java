package io.refldmseg.pipeline;

/**
 * Per-request settings. Defaults follow the official code: mask_alpha 0 for -f and 0.4 for -n
 * (null = that default), 20 DDPM steps, guidance 7 (instruction) and 1.5 (query image), the
 * posterior MODE for -f (deterministic; the official inference samples, see {@link Posterior}).
 *
 * @param ignoreLabel a support-mask label treated as background (mmseg's 255), or -1
 * @param noise       noise tensors supplied from outside (reproduce another implementation), or null
 * @param keepTensors keep intermediates in the result (for --save-tensors and tests)
 */
public record Options(Float maskAlpha, int steps, SchedulerKind scheduler, float guidance, float imageGuidance,
                      long seed, Posterior posterior, int ignoreLabel, NoiseInputs noise, boolean keepTensors) {

    public enum SchedulerKind {DDPM, DDIM}

    /** How -f turns the VAE posterior into the query latent. */
    public enum Posterior {MODE, SAMPLE}

    public Options {
        if (steps <= 0) throw new IllegalArgumentException("steps must be positive, got " + steps);
        if (maskAlpha != null && !(maskAlpha >= 0 && maskAlpha < 1))
            throw new IllegalArgumentException("mask alpha must be in [0, 1), got " + maskAlpha);
    }

    public static Options defaults() {
        return new Options(null, 20, SchedulerKind.DDPM, 7f, 1.5f, 0L, Posterior.MODE, -1, null, false);
    }

    public Options withMaskAlpha(Float v) {
        return new Options(v, steps, scheduler, guidance, imageGuidance, seed, posterior, ignoreLabel, noise, keepTensors);
    }

    public Options withSteps(int v) {
        return new Options(maskAlpha, v, scheduler, guidance, imageGuidance, seed, posterior, ignoreLabel, noise, keepTensors);
    }

    public Options withScheduler(SchedulerKind v) {
        return new Options(maskAlpha, steps, v, guidance, imageGuidance, seed, posterior, ignoreLabel, noise, keepTensors);
    }

    public Options withGuidance(float instruction, float image) {
        return new Options(maskAlpha, steps, scheduler, instruction, image, seed, posterior, ignoreLabel, noise, keepTensors);
    }

    public Options withSeed(long v) {
        return new Options(maskAlpha, steps, scheduler, guidance, imageGuidance, v, posterior, ignoreLabel, noise, keepTensors);
    }

    public Options withPosterior(Posterior v) {
        return new Options(maskAlpha, steps, scheduler, guidance, imageGuidance, seed, v, ignoreLabel, noise, keepTensors);
    }

    public Options withIgnoreLabel(int v) {
        return new Options(maskAlpha, steps, scheduler, guidance, imageGuidance, seed, posterior, v, noise, keepTensors);
    }

    public Options withNoise(NoiseInputs v) {
        return new Options(maskAlpha, steps, scheduler, guidance, imageGuidance, seed, posterior, ignoreLabel, v, keepTensors);
    }

    public Options withKeepTensors(boolean v) {
        return new Options(maskAlpha, steps, scheduler, guidance, imageGuidance, seed, posterior, ignoreLabel, noise, v);
    }
}
