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

    /**
     * One request's denoising state, on the backend: its scheduler, conditioning rows, current
     * latent and every step's noise (drawn up front in the order the steps use it, uploaded once).
     */
    private final class Trajectory {
        final Options o;
        final Scheduler sched;
        final Tensor image, context, mask, softMask, imageCond, nullTokens, stepNoise;
        final int[] shape;
        final int n;
        final boolean guided;
        final List<AttentionContext.Branch> branches;
        final float[] initNoise;
        Tensor lat;

        Trajectory(AutoencoderKL.Posterior post, RefLdmSeg.Prompt p, Options o, RandomGenerator rng) {
            this.o = o;
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
            initNoise = Noise.nhwc(o.noise() == null ? null : o.noise().initNoise(), image, rng, "init_noise");
            lat = be.tensor(initNoise, shape);
            stepNoise = sched.needsNoise() ? be.tensor(stepNoises(rng), Math.multiplyExact(sched.timesteps().length, shape[0]), shape[1], shape[2], shape[3]) : null;
        }

        /** Every step's noise, supplied or drawn, in step order, NHWC. */
        private float[] stepNoises(RandomGenerator rng) {
            int steps = sched.timesteps().length;
            float[] all = o.noise() == null ? null : o.noise().stepNoise(), out = new float[Math.multiplyExact(steps, n)];
            if (all != null && all.length < steps * n)
                throw new IllegalArgumentException("step_noise holds " + all.length / n + " steps, " + steps + " needed");
            for (int i = 0; i < steps; i++) {
                float[] supplied = all == null ? null : java.util.Arrays.copyOfRange(all, i * n, (i + 1) * n);
                System.arraycopy(Noise.nhwc(supplied, image, rng, "step_noise"), 0, out, i * n, n);
            }
            return out;
        }

        int rows() {
            return guided ? 3 : 1;
        }

        /** The UNet's input rows for the current latent: [rows, h, w, 2 x latent]. */
        Tensor unetInput() {
            return be.concatChannels(guided ? be.concatBatch(List.of(lat, lat, lat)) : lat, imageCond);
        }

        /** Guidance and one scheduler update from this request's raw UNet rows; returns the guided noise. */
        Tensor advance(int i, Tensor raw) {
            Tensor eps = guided ? Guidance.combine(be, raw, o.guidance(), o.imageGuidance()) : raw;
            Scheduler.Update u = sched.update(i);
            Tensor next = be.axpby(u.sample(), lat, u.eps(), eps);
            if (u.noise() != 0f) next = be.axpby(1f, next, u.noise(), be.sliceBatch(stepNoise, i * shape[0], shape[0]));
            lat = next;
            return eps;
        }
    }

    @Override
    public Tensor predict(AutoencoderKL.Posterior post, RefLdmSeg.Prompt p, Options o, RandomGenerator rng, PipelineListener keep) {
        Trajectory tr = new Trajectory(post, p, o, rng);
        int[] shape = tr.shape, ts = tr.sched.timesteps();
        int rows = tr.rows();
        boolean listening = keep != PipelineListener.NONE;
        UNet2DConditionModel.ContextProjections context = unet.contextProjections(tr.context); // the same in every step
        float[][] stepLatents = listening ? new float[ts.length][] : null, stepRaw = listening ? new float[ts.length][] : null,
                stepGuided = listening ? new float[ts.length][] : null;
        if (listening) {
            if (tr.guided) keep.onTensor("null_prompt", HostTensor.f32(be.toHost(tr.nullTokens), 1, tr.nullTokens.dim(1), tr.nullTokens.dim(2)));
            keep.onTensor("image_latents", HostCopies.nchw(be, tr.image));
            keep.onTensor("init_noise", HostTensor.f32(Layouts.nhwcToNchw(tr.initNoise, 1, shape[1], shape[2], shape[3]), 1, shape[3], shape[1], shape[2]));
        }
        for (int i = 0; i < ts.length; i++) {
            progress.get().accept(String.format("step %d/%d (t = %d)", i + 1, ts.length, ts[i]));
            Tensor latIn = tr.lat;
            AttentionContext where = LatentPredictor.unetCall(p, ts[i], i, tr.branches, tr.softMask);
            try (Backend.Scope step = be.scope()) {
                Tensor raw = unet.forward(tr.unetInput(), new float[]{ts[i]}, context, tr.mask, io.refldmseg.model.Probe.NONE, where);
                Tensor eps = tr.advance(i, raw);
                step.keep(tr.lat);
                if (listening) {
                    stepLatents[i] = be.toHost(tr.lat);
                    stepRaw[i] = be.toHost(raw);
                    stepGuided[i] = be.toHost(eps);
                    keep.onStep(new PipelineListener.Step(i, ts[i], HostCopies.latentNchw(be.toHost(latIn), shape, 1), HostCopies.latentNchw(stepRaw[i], shape, rows),
                            HostCopies.latentNchw(stepGuided[i], shape, 1), HostCopies.latentNchw(stepLatents[i], shape, 1)));
                }
            }
        }
        if (listening) {
            keep.onTensor("step_latents_out", HostCopies.stack(stepLatents, shape, 1));
            keep.onTensor("step_unet_raw", HostCopies.stack(stepRaw, shape, rows));
            keep.onTensor("step_eps_guided", HostCopies.stack(stepGuided, shape, 1));
            keep.onTensor("final_latents", HostCopies.nchw(be, tr.lat));
        }
        return tr.lat;
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
        Tensor mask = be.concatBatch(masks), softMask = be.concatBatch(soft);
        UNet2DConditionModel.ContextProjections context = unet.contextProjections(be.concatBatch(contexts)); // the same in every step
        int[] ts = first.sched.timesteps();
        int rows = first.rows();
        for (int i = 0; i < ts.length; i++) {
            progress.get().accept(String.format("step %d/%d (t = %d), %d requests", i + 1, ts.length, ts[i], all.size()));
            AttentionContext where = LatentPredictor.unetCall(prompts.getFirst(), ts[i], i, branches, softMask);
            try (Backend.Scope step = be.scope()) {
                Tensor raw = unet.forward(be.concatBatch(all.stream().map(Trajectory::unetInput).toList()), new float[]{ts[i]}, context, mask,
                        io.refldmseg.model.Probe.NONE, where);
                for (int r = 0; r < all.size(); r++) {
                    all.get(r).advance(i, be.sliceBatch(raw, r * rows, rows));
                    step.keep(all.get(r).lat);
                }
            }
        }
        return be.concatBatch(all.stream().map(tr -> tr.lat).toList());
    }

    /** Same steps, scheduler and number of guidance rows: the requests step through the same timesteps together. */
    @Override
    public boolean batchable(Options a, Options b) {
        return a.steps() == b.steps() && a.scheduler() == b.scheduler()
                && Guidance.applies(a.guidance(), a.imageGuidance()) == Guidance.applies(b.guidance(), b.imageGuidance());
    }
}
