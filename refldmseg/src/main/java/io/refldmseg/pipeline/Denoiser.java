package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Layouts;
import io.refldmseg.engine.Tensor;
import io.refldmseg.model.AttentionContext;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.UNet2DConditionModel;
import io.refldmseg.scheduler.DdimScheduler;
import io.refldmseg.scheduler.DdpmScheduler;
import io.refldmseg.scheduler.NoiseSchedule;
import io.refldmseg.scheduler.Scheduler;

import java.util.List;
import java.util.function.Consumer;
import java.util.random.RandomGenerator;

/**
 * Ref LDM-Seg-n: denoise from Gaussian noise with the DDPM (or DDIM) scheduler, conditioned on
 * the unscaled query latent (concatenated channels), with three-branch classifier-free guidance.
 */
final class Denoiser implements LatentPredictor {
    private final Backend be;
    private final UNet2DConditionModel unet;
    private final Prompter prompter;
    private final java.util.function.Supplier<Consumer<String>> progress;

    Denoiser(Backend be, UNet2DConditionModel unet, Prompter prompter, java.util.function.Supplier<Consumer<String>> progress) {
        this.be = be;
        this.unet = unet;
        this.prompter = prompter;
        this.progress = progress;
    }

    @Override
    public Tensor predict(AutoencoderKL.Posterior post, RefLdmSeg.Prompt p, Options o, RandomGenerator rng, PipelineListener keep) {
        NoiseSchedule schedule = NoiseSchedule.stableDiffusion();
        Scheduler sched = o.scheduler() == Options.SchedulerKind.DDPM ? new DdpmScheduler(schedule, o.steps()) : new DdimScheduler(schedule, o.steps());
        Tensor image = post.mean();
        int[] shape = image.shape();
        int n = Math.toIntExact(image.numel());
        boolean guided = Guidance.applies(o.guidance(), o.imageGuidance());
        Tensor context = p.tokens(), mask = p.keyMask(), softMask = p.softKeyMask(), imageCond = image;
        List<AttentionContext.Branch> branches = List.of(AttentionContext.Branch.TEXT);
        if (guided) {
            softMask = be.concatBatch(List.of(softMask, softMask, softMask));
            branches = List.of(AttentionContext.Branch.TEXT, AttentionContext.Branch.IMAGE, AttentionContext.Branch.UNCONDITIONED);
            Tensor nul = prompter.nullTokens(p.shots());
            context = be.concatBatch(List.of(p.tokens(), nul, nul));
            mask = be.concatBatch(List.of(p.keyMask(), p.keyMask(), p.keyMask())); // the official code masks the null rows too
            imageCond = be.concatBatch(List.of(image, image, be.tensor(new float[n], shape)));
            if (keep != PipelineListener.NONE) keep.onTensor("null_prompt", HostTensor.f32(be.toHost(nul), 1, nul.dim(1), nul.dim(2)));
        }
        float[] lat = Noise.nhwc(o.noise() == null ? null : o.noise().initNoise(), image, rng, "init_noise");
        int[] ts = sched.timesteps();
        int rows = guided ? 3 : 1;
        float[][] stepLatents = keep == PipelineListener.NONE ? null : new float[ts.length][], stepRaw = keep == PipelineListener.NONE ? null : new float[ts.length][],
                stepGuided = keep == PipelineListener.NONE ? null : new float[ts.length][];
        if (keep != PipelineListener.NONE) {
            keep.onTensor("image_latents", HostCopies.nchw(be, image));
            keep.onTensor("init_noise", HostTensor.f32(Layouts.nhwcToNchw(lat, 1, shape[1], shape[2], shape[3]), 1, shape[3], shape[1], shape[2]));
        }
        for (int i = 0; i < ts.length; i++) {
            progress.get().accept(String.format("step %d/%d (t = %d)", i + 1, ts.length, ts[i]));
            float[] latIn = lat;
            float[] raw = unetStep(lat, shape, guided, imageCond, ts[i], context, mask, LatentPredictor.unetCall(p, ts[i], i, branches, softMask));
            float[] eps = guided ? Guidance.combine(raw, n, o.guidance(), o.imageGuidance()) : raw;
            float[] stepNoise = null;
            if (sched.needsNoise()) {
                float[] all = o.noise() == null ? null : o.noise().stepNoise(), supplied = null;
                if (all != null) {
                    if (all.length < ts.length * n)
                        throw new IllegalArgumentException("step_noise holds " + all.length / n + " steps, " + ts.length + " needed");
                    supplied = java.util.Arrays.copyOfRange(all, i * n, (i + 1) * n);
                }
                stepNoise = Noise.nhwc(supplied, image, rng, "step_noise");
            }
            lat = sched.step(eps, i, lat, stepNoise).prevSample();
            if (keep != PipelineListener.NONE) {
                stepLatents[i] = lat;
                stepRaw[i] = raw;
                stepGuided[i] = eps;
                keep.onStep(new PipelineListener.Step(i, ts[i], HostCopies.latentNchw(latIn, shape, 1), HostCopies.latentNchw(raw, shape, rows),
                        HostCopies.latentNchw(eps, shape, 1), HostCopies.latentNchw(lat, shape, 1)));
            }
        }
        if (keep != PipelineListener.NONE) {
            keep.onTensor("step_latents_out", HostCopies.stack(stepLatents, shape, 1));
            keep.onTensor("step_unet_raw", HostCopies.stack(stepRaw, shape, rows));
            keep.onTensor("step_eps_guided", HostCopies.stack(stepGuided, shape, 1));
            keep.onTensor("final_latents", HostTensor.f32(Layouts.nhwcToNchw(lat, 1, shape[1], shape[2], shape[3]), 1, shape[3], shape[1], shape[2]));
        }
        return be.tensor(lat, shape);
    }


    /** One -n UNet call, on the host latent; its activations are freed once the prediction is on the host. */
    private float[] unetStep(float[] lat, int[] shape, boolean guided, Tensor imageCond, int t, Tensor context, Tensor mask, AttentionContext where) {
        return HostCopies.scoped(be, () -> {
            Tensor latT = be.tensor(lat, shape);
            Tensor in = be.concatChannels(guided ? be.concatBatch(List.of(latT, latT, latT)) : latT, imageCond);
            return be.toHost(unet.forward(in, new float[]{t}, context, mask, io.refldmseg.model.Probe.NONE, where));
        });
    }
}
