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

import java.util.ArrayList;
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

    /** One request's denoising state: its scheduler, conditioning rows and current latent (host, NHWC). */
    private final class Trajectory {
        final Options o;
        final RandomGenerator rng;
        final Scheduler sched;
        final Tensor image, context, mask, softMask, imageCond, nullTokens;
        final int[] shape;
        final int n;
        final boolean guided;
        final List<AttentionContext.Branch> branches;
        float[] lat;

        Trajectory(AutoencoderKL.Posterior post, RefLdmSeg.Prompt p, Options o, RandomGenerator rng) {
            this.o = o;
            this.rng = rng;
            NoiseSchedule schedule = NoiseSchedule.stableDiffusion();
            sched = o.scheduler() == Options.SchedulerKind.DDPM ? new DdpmScheduler(schedule, o.steps()) : new DdimScheduler(schedule, o.steps());
            image = post.mean();
            shape = image.shape();
            n = Math.toIntExact(image.numel());
            guided = Guidance.applies(o.guidance(), o.imageGuidance());
            if (guided) {
                nullTokens = prompter.nullTokens(p.shots());
                softMask = be.concatBatch(List.of(p.softKeyMask(), p.softKeyMask(), p.softKeyMask()));
                branches = List.of(AttentionContext.Branch.TEXT, AttentionContext.Branch.IMAGE, AttentionContext.Branch.UNCONDITIONED);
                context = be.concatBatch(List.of(p.tokens(), nullTokens, nullTokens));
                mask = be.concatBatch(List.of(p.keyMask(), p.keyMask(), p.keyMask())); // the official code masks the null rows too
                imageCond = be.concatBatch(List.of(image, image, be.tensor(new float[n], shape)));
            } else {
                nullTokens = null;
                softMask = p.softKeyMask();
                branches = List.of(AttentionContext.Branch.TEXT);
                context = p.tokens();
                mask = p.keyMask();
                imageCond = image;
            }
            lat = Noise.nhwc(o.noise() == null ? null : o.noise().initNoise(), image, rng, "init_noise");
        }

        int rows() {
            return guided ? 3 : 1;
        }

        /** The UNet's input rows for the current latent: [rows, h, w, 2 x latent]. */
        Tensor unetInput() {
            Tensor latT = be.tensor(lat, shape);
            return be.concatChannels(guided ? be.concatBatch(List.of(latT, latT, latT)) : latT, imageCond);
        }

        /** Guidance and one scheduler update from this request's raw UNet rows; returns the guided noise. */
        float[] advance(int i, float[] raw) {
            int[] ts = sched.timesteps();
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
            return eps;
        }
    }

    @Override
    public Tensor predict(AutoencoderKL.Posterior post, RefLdmSeg.Prompt p, Options o, RandomGenerator rng, PipelineListener keep) {
        Trajectory tr = new Trajectory(post, p, o, rng);
        int[] shape = tr.shape, ts = tr.sched.timesteps();
        int rows = tr.rows();
        float[][] stepLatents = keep == PipelineListener.NONE ? null : new float[ts.length][], stepRaw = keep == PipelineListener.NONE ? null : new float[ts.length][],
                stepGuided = keep == PipelineListener.NONE ? null : new float[ts.length][];
        if (keep != PipelineListener.NONE) {
            if (tr.guided) keep.onTensor("null_prompt", HostTensor.f32(be.toHost(tr.nullTokens), 1, tr.nullTokens.dim(1), tr.nullTokens.dim(2)));
            keep.onTensor("image_latents", HostCopies.nchw(be, tr.image));
            keep.onTensor("init_noise", HostTensor.f32(Layouts.nhwcToNchw(tr.lat, 1, shape[1], shape[2], shape[3]), 1, shape[3], shape[1], shape[2]));
        }
        for (int i = 0; i < ts.length; i++) {
            progress.get().accept(String.format("step %d/%d (t = %d)", i + 1, ts.length, ts[i]));
            float[] latIn = tr.lat;
            AttentionContext where = LatentPredictor.unetCall(p, ts[i], i, tr.branches, tr.softMask);
            float[] raw = unetStep(tr::unetInput, ts[i], tr.context, tr.mask, where);
            float[] eps = tr.advance(i, raw);
            if (keep != PipelineListener.NONE) {
                stepLatents[i] = tr.lat;
                stepRaw[i] = raw;
                stepGuided[i] = eps;
                keep.onStep(new PipelineListener.Step(i, ts[i], HostCopies.latentNchw(latIn, shape, 1), HostCopies.latentNchw(raw, shape, rows),
                        HostCopies.latentNchw(eps, shape, 1), HostCopies.latentNchw(tr.lat, shape, 1)));
            }
        }
        if (keep != PipelineListener.NONE) {
            keep.onTensor("step_latents_out", HostCopies.stack(stepLatents, shape, 1));
            keep.onTensor("step_unet_raw", HostCopies.stack(stepRaw, shape, rows));
            keep.onTensor("step_eps_guided", HostCopies.stack(stepGuided, shape, 1));
            keep.onTensor("final_latents", HostTensor.f32(Layouts.nhwcToNchw(tr.lat, 1, shape[1], shape[2], shape[3]), 1, shape[3], shape[1], shape[2]));
        }
        return be.tensor(tr.lat, shape);
    }

    /** Every request's CFG rows in one UNet call per step (request-major: its rows together, in the official order). */
    @Override
    public Tensor predictBatch(List<AutoencoderKL.Posterior> posts, List<RefLdmSeg.Prompt> prompts, List<Options> options, List<RandomGenerator> rngs) {
        List<Trajectory> all = new ArrayList<>();
        for (int r = 0; r < posts.size(); r++) all.add(new Trajectory(posts.get(r), prompts.get(r), options.get(r), rngs.get(r)));
        Trajectory first = all.getFirst();
        List<AttentionContext.Branch> branches = new ArrayList<>();
        List<Tensor> contexts = new ArrayList<>(), masks = new ArrayList<>(), soft = new ArrayList<>();
        for (Trajectory tr : all) {
            branches.addAll(tr.branches);
            contexts.add(tr.context);
            masks.add(tr.mask);
            soft.add(tr.softMask);
        }
        Tensor context = be.concatBatch(contexts), mask = be.concatBatch(masks), softMask = be.concatBatch(soft);
        int[] ts = first.sched.timesteps();
        int rowFloats = first.rows() * first.n;
        for (int i = 0; i < ts.length; i++) {
            progress.get().accept(String.format("step %d/%d (t = %d), %d requests", i + 1, ts.length, ts[i], all.size()));
            AttentionContext where = LatentPredictor.unetCall(prompts.getFirst(), ts[i], i, branches, softMask);
            float[] raw = unetStep(() -> be.concatBatch(all.stream().map(Trajectory::unetInput).toList()), ts[i], context, mask, where);
            for (int r = 0; r < all.size(); r++) all.get(r).advance(i, java.util.Arrays.copyOfRange(raw, r * rowFloats, (r + 1) * rowFloats));
        }
        List<Tensor> out = new ArrayList<>();
        for (Trajectory tr : all) out.add(be.tensor(tr.lat, tr.shape));
        return be.concatBatch(out);
    }

    /** Same steps, scheduler and number of guidance rows: the requests step through the same timesteps together. */
    @Override
    public boolean batchable(Options a, Options b) {
        return a.steps() == b.steps() && a.scheduler() == b.scheduler()
                && Guidance.applies(a.guidance(), a.imageGuidance()) == Guidance.applies(b.guidance(), b.imageGuidance());
    }

    /** One -n UNet call on the rows {@code input} makes; its activations are freed once the prediction is on the host. */
    private float[] unetStep(java.util.function.Supplier<Tensor> input, int t, Tensor context, Tensor mask, AttentionContext where) {
        return HostCopies.scoped(be, () -> be.toHost(unet.forward(input.get(), new float[]{t}, context, mask, io.refldmseg.model.Probe.NONE, where)));
    }
}
