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

    /** The schedulers' training timesteps: at most one inference step each. */
    public static final int MAX_STEPS = 1000;

    public Options {
        if (steps <= 0 || steps > MAX_STEPS) throw new IllegalArgumentException("steps must be in 1.." + MAX_STEPS + ", got " + steps);
        if (!Float.isFinite(guidance)) throw new IllegalArgumentException("guidance must be a finite number, got " + guidance);
        if (!Float.isFinite(imageGuidance)) throw new IllegalArgumentException("image guidance must be a finite number, got " + imageGuidance);
        if (scheduler == null || posterior == null) throw new IllegalArgumentException("scheduler and posterior must be given");
        if (ignoreLabel < -1 || ignoreLabel > 255) throw new IllegalArgumentException("ignore label must be -1 (none) or 0..255, got " + ignoreLabel);
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
