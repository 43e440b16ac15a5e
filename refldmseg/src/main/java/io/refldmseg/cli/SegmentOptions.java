package io.refldmseg.cli;

import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.SafeTensors;
import io.refldmseg.loader.TensorFile;
import io.refldmseg.pipeline.NoiseInputs;
import io.refldmseg.pipeline.Options;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The per-request knobs shared by segment and video. */
final class SegmentOptions {
    @Option(names = "--mask-alpha", paramLabel = "A", description = "augmented pseudo-mask weight (default: 0 for -f, 0.4 for -n, as officially trained)")
    Float maskAlpha;

    @Option(names = "--steps", defaultValue = "20", description = "-n denoising steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--scheduler", defaultValue = "ddpm", paramLabel = "ddpm|ddim", description = "-n scheduler (default: ${DEFAULT-VALUE}, the official one)")
    String scheduler;

    @Option(names = "--guidance", defaultValue = "7", description = "-n instruction guidance scale g_t (default: ${DEFAULT-VALUE})")
    float guidance;

    @Option(names = "--image-guidance", defaultValue = "1.5", description = "-n query-image guidance scale g_q (default: ${DEFAULT-VALUE})")
    float imageGuidance;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the noise RNG (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--posterior", defaultValue = "mode", paramLabel = "mode|sample",
            description = "-f query latent: the VAE posterior mode (default, deterministic) or a sample (the official inference)")
    String posterior;

    @Option(names = "--noise", paramLabel = "FILE", description = "safetensors with init_noise [1,4,h,w], step_noise [steps,1,4,h,w], posterior_eps [1,4,h,w]")
    Path noise;

    @Option(names = "--ignore-label", paramLabel = "N", defaultValue = "-1", description = "support-mask label treated as background (e.g. 255 for mmseg padding)")
    int ignoreLabel;

    Options toOptions(boolean keepTensors) {
        if (steps <= 0 || steps > Options.MAX_STEPS) throw new Main.UserError("--steps must be in 1.." + Options.MAX_STEPS + ", got " + steps);
        if (!Float.isFinite(guidance)) throw new Main.UserError("--guidance must be a finite number, got " + guidance);
        if (!Float.isFinite(imageGuidance)) throw new Main.UserError("--image-guidance must be a finite number, got " + imageGuidance);
        if (ignoreLabel < -1 || ignoreLabel > 255) throw new Main.UserError("--ignore-label must be -1 (none) or 0..255, got " + ignoreLabel);
        Options.SchedulerKind kind = switch (scheduler.toLowerCase()) {
            case "ddpm" -> Options.SchedulerKind.DDPM;
            case "ddim" -> Options.SchedulerKind.DDIM;
            default -> throw new Main.UserError("--scheduler must be ddpm or ddim, got '" + scheduler + "'");
        };
        Options.Posterior post = switch (posterior.toLowerCase()) {
            case "mode" -> Options.Posterior.MODE;
            case "sample" -> Options.Posterior.SAMPLE;
            default -> throw new Main.UserError("--posterior must be mode or sample, got '" + posterior + "'");
        };
        if (maskAlpha != null && !(maskAlpha >= 0 && maskAlpha < 1)) throw new Main.UserError("--mask-alpha must be in [0, 1), got " + maskAlpha);
        return new Options(maskAlpha, steps, kind, guidance, imageGuidance, seed, post, ignoreLabel, readNoise(), keepTensors);
    }

    private NoiseInputs readNoise() {
        if (noise == null) return null;
        try (TensorFile f = openNoise()) {
            float[] init = f.tensors().containsKey("init_noise") ? f.tensor("init_noise").toFloats() : null;
            float[] step = f.tensors().containsKey("step_noise") ? f.tensor("step_noise").toFloats() : null;
            float[] eps = f.tensors().containsKey("posterior_eps") ? f.tensor("posterior_eps").toFloats() : null;
            if (init == null && step == null && eps == null)
                throw new Main.UserError(noise + ": holds none of init_noise, step_noise, posterior_eps");
            return new NoiseInputs(init, step, eps);
        }
    }

    private static final String NOISE_FORMAT = "a safetensors file with init_noise [1,4,h,w], step_noise [steps,1,4,h,w] and/or posterior_eps [1,4,h,w]";

    private TensorFile openNoise() {
        try {
            return SafeTensors.open(noise);
        } catch (CheckpointException e) {
            throw new Main.UserError("--noise " + noise + ": expected " + NOISE_FORMAT + "; " + e.getMessage());
        }
    }
}
