package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Layouts;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.Models;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import io.refldmseg.model.AlphaClipVisionTower;
import io.refldmseg.model.Attention;
import io.refldmseg.model.AttentionContext;
import io.refldmseg.model.AttentionLayers;
import io.refldmseg.model.AttentionProcessor;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.UNet2DConditionModel;
import io.refldmseg.scheduler.DdimScheduler;
import io.refldmseg.scheduler.DdpmScheduler;
import io.refldmseg.scheduler.NoiseSchedule;
import io.refldmseg.scheduler.Scheduler;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;

/**
 * Ref LDM-Seg: segments a query image from support images and their masks with Stable Diffusion
 * 1.5 as the mask generator. The UNet's input width picks the meta-architecture: 4 channels is
 * Ref LDM-Seg-f (one UNet step at t = 0 predicts the pseudo-mask latent), 8 channels is
 * Ref LDM-Seg-n (denoising from noise conditioned on the query latent, 3-branch classifier-free
 * guidance).
 *
 * <p>Thread safety: requests are serialised (every public method is synchronized); share one
 * instance between threads or open one per thread. LoRA adapters change only between requests.
 */
public final class RefLdmSeg implements AutoCloseable {
    /** Model resolution (the official test pipeline fits every image into 256 x 256). */
    public static final int SIZE = 256;

    public enum Architecture {
        F, N;

        public float defaultMaskAlpha() {
            return this == F ? 0f : 0.4f;
        }
    }

    /** Where the three networks come from: a file in any supported layout or a diffusers folder each. */
    public record Checkpoints(Path unet, Path vae, Path clip) {
    }

    /**
     * Encoded instructions: tokens [1, k * grid^2, W] (before the UNet's adapter), the key mask
     * [1, k * grid^2] (each token 1 when the nearest-resized support mask is object there), and
     * the soft key mask of the same shape (the object's area fraction on each token's patch).
     */
    public record Prompt(Tensor tokens, Tensor keyMask, Tensor softKeyMask, int shots) {
    }

    private final Backend be;
    private final UNet2DConditionModel unet;
    private final AutoencoderKL vae;
    private final AlphaClipVisionTower tower;
    private final Architecture arch;
    private final Preprocess prep;
    private final float latentScale;
    private final Lora lora;
    private volatile Consumer<String> progress = s -> {
    };
    private Tensor nullTokens;
    private volatile boolean ownsBackend;

    /** Networks built by the caller (their checkpoint files may be closed once they are built). */
    public RefLdmSeg(UNet2DConditionModel unet, AutoencoderKL vae, AlphaClipVisionTower tower, Backend backend) {
        this.be = backend;
        this.unet = unet;
        this.vae = vae;
        this.tower = tower;
        UNetConfig uc = unet.config();
        int latent = vae.config().latentChannels();
        if (uc.inChannels() == latent) arch = Architecture.F;
        else if (uc.inChannels() == 2 * latent) arch = Architecture.N;
        else throw new CheckpointException("UNet takes " + uc.inChannels() + " input channels; Ref LDM-Seg needs "
                + latent + " (-f) or " + 2 * latent + " (-n) for a VAE with " + latent + " latent channels");
        int towerWidth = tower.config().width();
        int expected = uc.encoderHidDim() > 0 ? uc.encoderHidDim() : uc.crossAttentionDim();
        if (towerWidth != expected)
            throw new CheckpointException("vision tower width " + towerWidth + " does not match the UNet's instruction width " + expected
                    + (uc.encoderHidDim() > 0 ? " (encoder_hid_proj input)" : " (cross_attention_dim; the UNet has no encoder_hid_proj adapter)"));
        this.prep = new Preprocess(backend, SIZE);
        this.latentScale = (float) vae.config().scalingFactor();
        this.lora = new Lora(unet, backend);
    }

    /**
     * Loads the three networks (progress lines go to {@code progress}). The backend copies what it
     * needs while a network is built, so each checkpoint is unmapped right after: nothing of the
     * files stays resident.
     */
    public static RefLdmSeg load(Checkpoints c, Backend backend, Consumer<String> progress) {
        progress.accept("loading UNet from " + c.unet());
        UNet2DConditionModel unet;
        try (Models.Loaded<UNetConfig> u = Models.unet(c.unet())) {
            long t0 = System.nanoTime();
            unet = new UNet2DConditionModel(u.config(), u.weights(), backend);
            progress.accept(String.format("  %s, %,d parameters, architecture %s, packed in %.1f s", u.weights().layout(),
                    u.weights().parameterCount(), u.configSource(), (System.nanoTime() - t0) / 1e9));
        }
        progress.accept("loading VAE from " + c.vae());
        AutoencoderKL vae;
        try (Models.Loaded<VaeConfig> v = Models.vae(c.vae())) {
            vae = new AutoencoderKL(v.config(), v.weights(), backend);
            progress.accept(String.format("  %s, %,d parameters, architecture %s", v.weights().layout(), v.weights().parameterCount(), v.configSource()));
        }
        progress.accept("loading vision tower from " + c.clip());
        AlphaClipVisionTower tower;
        try (Models.Loaded<ClipConfig> t = Models.clip(c.clip())) {
            tower = new AlphaClipVisionTower(t.config(), t.weights(), backend);
            progress.accept(String.format("  %s, %,d parameters, %d heads (architecture %s)", t.weights().layout(), t.weights().parameterCount(),
                    t.config().heads(), t.configSource()));
        }
        RefLdmSeg r = new RefLdmSeg(unet, vae, tower, backend);
        r.progress = progress;
        return r;
    }

    public Architecture architecture() {
        return arch;
    }

    public Backend backend() {
        return be;
    }

    public void setProgress(Consumer<String> progress) {
        this.progress = progress;
    }

    /** LoRA adapters on the UNet's attention projections (replaces any set before). */
    public synchronized void setLoras(List<Lora.Adapter> adapters) {
        lora.apply(adapters);
    }

    public synchronized Lora.Adapter loadLora(Path file, float strength) {
        return lora.load(file, strength);
    }

    // ---- instructions ----

    public synchronized Prompt prompt(List<Support> supports, int ignoreLabel) {
        return prompt(supports, ignoreLabel, PipelineListener.NONE);
    }

    private Prompt prompt(List<Support> supports, int ignoreLabel, PipelineListener keep) {
        if (supports.isEmpty()) throw new IllegalArgumentException("at least one support image with its mask is needed");
        int k = supports.size(), res = tower.config().inputResolution(), grid = tower.config().gridSize(), w = tower.config().width();
        List<Tensor> images = new ArrayList<>(), alphas = new ArrayList<>(), keys = new ArrayList<>();
        float[] soft = new float[k * grid * grid];
        for (Support s : supports) {
            Preprocess.Geometry g = prep.geometry(s.image().width(), s.image().height());
            images.add(be.resizeBilinear(prep.image(s.image(), g), res, res));
            Tensor mask = prep.mask(s.mask(), g, ignoreLabel);
            float[] a = be.toHost(be.resizeNearest(mask, res, res));
            for (int i = 0; i < a.length; i++) a[i] = (a[i] - 0.5f) / 0.26f;
            alphas.add(be.tensor(a, 1, res, res, 1));
            keys.add(be.resizeNearest(mask, grid, grid));
            areaFractions(be.toHost(mask), SIZE, grid, soft, keys.size() - 1);
        }
        Tensor sx = be.concatBatch(images), alpha = be.concatBatch(alphas), sy = be.concatBatch(keys);
        Tensor all = tower.forward(sx, alpha);
        Tensor tokens = dropClassToken(all, k);
        Tensor keyMask = be.reshape(sy, 1, k * grid * grid);
        if (keep != PipelineListener.NONE) {
            keep.onTensor("sx224", nchw(sx));
            keep.onTensor("alpha224", nchw(alpha));
            keep.onTensor("sy16", HostTensor.u8(be.toHost(sy), k, 1, grid, grid));
            keep.onTensor("tokens_all", HostTensor.f32(be.toHost(all), k, all.dim(1), w));
            keep.onTensor("prompt_embeds", HostTensor.f32(be.toHost(tokens), 1, tokens.dim(1), w));
            keep.onTensor("symask", HostTensor.f32(be.toHost(keyMask), 1, keyMask.dim(1)));
            keep.onPrompt(HostTensor.f32(be.toHost(tokens), 1, tokens.dim(1), w), HostTensor.f32(be.toHost(keyMask), 1, keyMask.dim(1)));
        }
        return new Prompt(tokens, keyMask, be.tensor(soft, 1, k * grid * grid), k);
    }

    /** The mean of each of grid x grid equal patches of a size x size mask into shot {@code shot}'s tokens of {@code out}. */
    private static void areaFractions(float[] mask, int size, int grid, float[] out, int shot) {
        for (int ty = 0; ty < grid; ty++)
            for (int tx = 0; tx < grid; tx++) {
                int y0 = ty * size / grid, y1 = (ty + 1) * size / grid, x0 = tx * size / grid, x1 = (tx + 1) * size / grid;
                double sum = 0;
                for (int y = y0; y < y1; y++) for (int x = x0; x < x1; x++) sum += mask[y * size + x];
                out[(shot * grid + ty) * grid + tx] = (float) (sum / ((y1 - y0) * (x1 - x0)));
            }
    }

    // ---- attention layers (research) ----

    /** Every attention layer of the UNet, the VAE and the vision tower, by checkpoint name. */
    public List<Attention> attentionLayers() {
        List<Attention> all = new ArrayList<>(unet.attentionLayers());
        all.addAll(vae.attentionLayers());
        all.addAll(tower.attentionLayers());
        return List.copyOf(all);
    }

    /** Sets {@code processor} on the layers named by an exact name or glob (an error naming the nearest layers if none matches). */
    public synchronized List<Attention> setAttentionProcessor(String nameOrGlob, AttentionProcessor processor) {
        return AttentionLayers.setProcessor(attentionLayers(), nameOrGlob, processor);
    }

    public synchronized List<Attention> setAttentionProcessor(java.util.function.Predicate<Attention> which, AttentionProcessor processor) {
        return AttentionLayers.setProcessor(attentionLayers(), which, processor);
    }

    /** Every layer back to the fused default. */
    public synchronized void resetAttentionProcessors() {
        attentionLayers().forEach(a -> a.setProcessor(AttentionProcessor.FUSED));
    }

    private AttentionContext unetCall(Prompt p, float timestep, int step, List<AttentionContext.Branch> rows, Tensor softKeyMask) {
        return new AttentionContext(AttentionContext.Network.UNET, timestep, step, rows, p.shots(), p.keyMask().dim(1) / p.shots(), softKeyMask);
    }

    /** [k, 1 + L, W] tower output -> [1, k * L, W] instruction tokens, shots concatenated. */
    private Tensor dropClassToken(Tensor all, int k) {
        int l = all.dim(1) - 1, w = all.dim(2);
        float[] a = be.toHost(all), out = new float[k * l * w];
        for (int s = 0; s < k; s++) System.arraycopy(a, (s * (l + 1) + 1) * w, out, s * l * w, l * w);
        return be.tensor(out, 1, k * l, w);
    }

    /** Tower tokens of an all-zero image with an all-ones mask: the "no instruction" of classifier-free guidance. */
    private Tensor nullTokens(int shots) {
        if (nullTokens == null) {
            int res = tower.config().inputResolution();
            float[] alpha = new float[res * res];
            java.util.Arrays.fill(alpha, (1f - 0.5f) / 0.26f);
            Tensor all = tower.forward(be.tensor(new float[res * res * 3], 1, res, res, 3), be.tensor(alpha, 1, res, res, 1));
            nullTokens = dropClassToken(all, 1);
        }
        return shots == 1 ? nullTokens : be.concatDim1(Collections.nCopies(shots, nullTokens));
    }

    /**
     * VAE posterior mode x 0.18215 of an image in [-1, 1] (HWC, any size the VAE accepts), as NCHW
     * floats: the latent a pseudo-mask target is trained towards.
     */
    public synchronized float[] encodeLatent(float[] imageHwc, int width, int height) {
        return scoped(() -> {
            Tensor z = be.scale(vae.encode(be.tensor(imageHwc, 1, height, width, 3)).mean(), latentScale);
            return Layouts.nhwcToNchw(be.toHost(z), 1, z.dim(1), z.dim(2), z.dim(3));
        });
    }

    // ---- segmentation ----

    public Result segment(Request request) {
        return segment(request.query(), request.supports(), request.options());
    }

    public Result segment(RgbImage query, List<Support> supports, Options o) {
        return segment(query, supports, o, PipelineListener.NONE);
    }

    /** Segments with {@code listener} seeing the prompt, every -n step, the logits and the named intermediates. */
    public synchronized Result segment(RgbImage query, List<Support> supports, Options o, PipelineListener listener) {
        return scoped(() -> {
            long t0 = System.nanoTime();
            PipelineListener.TensorCollector kept = o.keepTensors() ? new PipelineListener.TensorCollector() : null;
            PipelineListener keep = listening(kept, listener);
            Prompt p = prompt(supports, o.ignoreLabel(), keep);
            return run(encode(query), p, o, keep, kept, System.nanoTime() - t0);
        });
    }

    public Result segment(RgbImage query, Prompt prompt, Options o) {
        return segment(query, prompt, o, PipelineListener.NONE);
    }

    public synchronized Result segment(RgbImage query, Prompt prompt, Options o, PipelineListener listener) {
        PipelineListener.TensorCollector kept = o.keepTensors() ? new PipelineListener.TensorCollector() : null;
        return scoped(() -> run(encode(query), prompt, o, listening(kept, listener), kept, 0));
    }

    private static PipelineListener listening(PipelineListener.TensorCollector kept, PipelineListener listener) {
        return PipelineListener.both(kept == null ? PipelineListener.NONE : kept, java.util.Objects.requireNonNull(listener, "listener"));
    }

    /** Runs {@code body} and then frees the backend memory it made (results are host data by then). */
    private <T> T scoped(java.util.function.Supplier<T> body) {
        long mark = be.mark();
        try {
            return body.get();
        } finally {
            be.release(mark);
        }
    }

    /** Video: the first frame and its mask are the prompt for every later frame (tokens computed once). */
    public synchronized List<Result> segmentVideo(List<RgbImage> frames, LabelMap firstMask, Options o) {
        if (frames.size() < 2) throw new IllegalArgumentException("a video needs at least two frames (the first is the prompt)");
        Prompt p = prompt(List.of(new Support(frames.getFirst(), firstMask)), o.ignoreLabel(), PipelineListener.NONE);
        List<Result> out = new ArrayList<>();
        for (int i = 1; i < frames.size(); i++) {
            progress.accept("frame " + (i + 1) + "/" + frames.size());
            RgbImage frame = frames.get(i);
            out.add(scoped(() -> run(encode(frame), p, o, PipelineListener.NONE, null, 0)));
        }
        return out;
    }

    /** Several categories on one query: a label map (0 = background, c = category c) and per-class probabilities. */
    public record CategoryResult(int width, int height, byte[] labels, float[][] probabilities, List<Result> perCategory) {
    }

    public synchronized CategoryResult segmentCategories(RgbImage query, List<List<Support>> categories, Options o) {
        if (categories.isEmpty()) throw new IllegalArgumentException("no categories given");
        List<Result> results = scoped(() -> {
            EncodedQuery encoded = encode(query); // one VAE encode serves every category
            List<Result> each = new ArrayList<>();
            for (int c = 0; c < categories.size(); c++) {
                progress.accept("category " + (c + 1) + "/" + categories.size());
                List<Support> supports = categories.get(c);
                each.add(scoped(() -> run(encoded, prompt(supports, o.ignoreLabel(), PipelineListener.NONE), o, PipelineListener.NONE, null, 0)));
            }
            return each;
        });
        int pixels = query.width() * query.height();
        float[][] margins = new float[results.size()][pixels];
        for (int c = 0; c < results.size(); c++) {
            float[] l = results.get(c).logits();
            for (int p = 0; p < pixels; p++) margins[c][p] = l[pixels + p] - l[p];
        }
        byte[] labels = new byte[pixels];
        float[][] prob = PseudoMask.categories(margins, labels);
        return new CategoryResult(query.width(), query.height(), labels, prob, results);
    }

    /** A query fitted into the model square, normalised, and through the VAE encoder. */
    private record EncodedQuery(RgbImage image, Preprocess.Geometry geometry, Tensor x, AutoencoderKL.Posterior posterior, long nanos) {
    }

    private EncodedQuery encode(RgbImage query) {
        long t0 = System.nanoTime();
        Preprocess.Geometry g = prep.geometry(query.width(), query.height());
        Tensor x = prep.image(query, g);
        return new EncodedQuery(query, g, x, vae.encode(x), System.nanoTime() - t0);
    }

    private Result run(EncodedQuery q, Prompt p, Options o, PipelineListener keep, PipelineListener.TensorCollector kept, long promptNanos) {
        AutoencoderKL.Posterior post = q.posterior();
        if (keep != PipelineListener.NONE) {
            keep.onTensor("latent_mean", nchw(post.mean()));
            keep.onTensor("latent_logvar", nchw(post.logvar()));
        }
        long t1 = System.nanoTime();
        RandomGenerator rng = RandomGeneratorFactory.of("L64X128MixRandom").create(o.seed());
        Tensor latent = arch == Architecture.F ? predictF(post, p, o, rng, keep) : denoiseN(post, p, o, rng, keep);
        long t2 = System.nanoTime();
        Tensor decoded = vae.decode(be.scale(latent, 1f / latentScale));
        float alpha = o.maskAlpha() != null ? o.maskAlpha() : arch.defaultMaskAlpha();
        Tensor logits = be.axpby(1f, decoded, -alpha, q.x());
        if (keep != PipelineListener.NONE) {
            HostTensor l = nchw(logits);
            keep.onTensor("logits", l);
            keep.onLogits(l);
        }
        float[] hwc = be.toHost(prep.restore(logits, q.geometry()));
        byte[] mask = PseudoMask.decide(hwc);
        long t3 = System.nanoTime();
        int w = q.image().width(), h = q.image().height();
        if (keep != PipelineListener.NONE) {
            float[] m = new float[mask.length];
            for (int i = 0; i < m.length; i++) m[i] = mask[i];
            keep.onTensor("mask", HostTensor.u8(m, 1, h, w));
        }
        float[] chw = Layouts.nhwcToNchw(hwc, 1, h, w, 3);
        Result.Timings tm = new Result.Timings(promptNanos / 1_000_000, q.nanos() / 1_000_000, (t2 - t1) / 1_000_000,
                (t3 - t2) / 1_000_000, (promptNanos + q.nanos() + t3 - t1) / 1_000_000);
        return new Result(w, h, mask, chw, kept == null ? Map.of() : kept.tensors(), tm);
    }

    /** -f: the UNet at t = 0 maps the scaled query latent straight to the pseudo-mask latent. */
    private Tensor predictF(AutoencoderKL.Posterior post, Prompt p, Options o, RandomGenerator rng, PipelineListener keep) {
        Tensor z = post.mean();
        if (o.posterior() == Options.Posterior.SAMPLE) {
            float[] eps = noise(o.noise() == null ? null : o.noise().posteriorEps(), post.mean(), rng, "posterior_eps");
            float[] mean = be.toHost(post.mean()), logvar = be.toHost(post.logvar()), s = new float[mean.length];
            for (int i = 0; i < s.length; i++) s[i] = mean[i] + (float) Math.exp(0.5f * Math.min(20f, Math.max(-30f, logvar[i]))) * eps[i];
            z = be.tensor(s, post.mean().shape());
        }
        Tensor latent = be.scale(z, latentScale);
        Tensor pred = unet.forward(latent, new float[]{0f}, p.tokens(), p.keyMask(), io.refldmseg.model.Probe.NONE,
                unetCall(p, 0f, 0, List.of(AttentionContext.Branch.TEXT), p.softKeyMask()));
        if (keep != PipelineListener.NONE) {
            keep.onTensor("latent", nchw(latent));
            keep.onTensor("unet_pred", nchw(pred));
        }
        return pred;
    }

    /** One -n UNet call, on the host latent; its activations are freed once the prediction is on the host. */
    private float[] unetStep(float[] lat, int[] shape, boolean guided, Tensor imageCond, int t, Tensor context, Tensor mask, AttentionContext where) {
        return scoped(() -> {
            Tensor latT = be.tensor(lat, shape);
            Tensor in = be.concatChannels(guided ? be.concatBatch(List.of(latT, latT, latT)) : latT, imageCond);
            return be.toHost(unet.forward(in, new float[]{t}, context, mask, io.refldmseg.model.Probe.NONE, where));
        });
    }

    /** -n: denoise from Gaussian noise, conditioned on the unscaled query latent, with 3-branch guidance. */
    private Tensor denoiseN(AutoencoderKL.Posterior post, Prompt p, Options o, RandomGenerator rng, PipelineListener keep) {
        NoiseSchedule schedule = NoiseSchedule.stableDiffusion();
        Scheduler sched = o.scheduler() == Options.SchedulerKind.DDPM ? new DdpmScheduler(schedule, o.steps()) : new DdimScheduler(schedule, o.steps());
        Tensor image = post.mean();
        int[] shape = image.shape();
        int n = Math.toIntExact(image.numel());
        boolean guided = o.guidance() >= 1f && o.imageGuidance() >= 1f;
        Tensor context = p.tokens(), mask = p.keyMask(), softMask = p.softKeyMask(), imageCond = image;
        List<AttentionContext.Branch> branches = List.of(AttentionContext.Branch.TEXT);
        if (guided) {
            softMask = be.concatBatch(List.of(softMask, softMask, softMask));
            branches = List.of(AttentionContext.Branch.TEXT, AttentionContext.Branch.IMAGE, AttentionContext.Branch.UNCONDITIONED);
            Tensor nul = nullTokens(p.shots());
            context = be.concatBatch(List.of(p.tokens(), nul, nul));
            mask = be.concatBatch(List.of(p.keyMask(), p.keyMask(), p.keyMask())); // the official code masks the null rows too
            imageCond = be.concatBatch(List.of(image, image, be.tensor(new float[n], shape)));
            if (keep != PipelineListener.NONE) keep.onTensor("null_prompt", HostTensor.f32(be.toHost(nul), 1, nul.dim(1), nul.dim(2)));
        }
        float[] lat = noise(o.noise() == null ? null : o.noise().initNoise(), image, rng, "init_noise");
        int[] ts = sched.timesteps();
        int rows = guided ? 3 : 1;
        float[][] stepLatents = keep == PipelineListener.NONE ? null : new float[ts.length][], stepRaw = keep == PipelineListener.NONE ? null : new float[ts.length][],
                stepGuided = keep == PipelineListener.NONE ? null : new float[ts.length][];
        if (keep != PipelineListener.NONE) {
            keep.onTensor("image_latents", nchw(image));
            keep.onTensor("init_noise", HostTensor.f32(Layouts.nhwcToNchw(lat, 1, shape[1], shape[2], shape[3]), 1, shape[3], shape[1], shape[2]));
        }
        for (int i = 0; i < ts.length; i++) {
            progress.accept(String.format("step %d/%d (t = %d)", i + 1, ts.length, ts[i]));
            float[] latIn = lat;
            float[] raw = unetStep(lat, shape, guided, imageCond, ts[i], context, mask, unetCall(p, ts[i], i, branches, softMask));
            float[] eps = guided ? guide(raw, n, o.guidance(), o.imageGuidance()) : raw;
            float[] stepNoise = null;
            if (sched.needsNoise()) {
                float[] all = o.noise() == null ? null : o.noise().stepNoise(), supplied = null;
                if (all != null) {
                    if (all.length < ts.length * n)
                        throw new IllegalArgumentException("step_noise holds " + all.length / n + " steps, " + ts.length + " needed");
                    supplied = java.util.Arrays.copyOfRange(all, i * n, (i + 1) * n);
                }
                stepNoise = noise(supplied, image, rng, "step_noise");
            }
            lat = sched.step(eps, i, lat, stepNoise).prevSample();
            if (keep != PipelineListener.NONE) {
                stepLatents[i] = lat;
                stepRaw[i] = raw;
                stepGuided[i] = eps;
                keep.onStep(new PipelineListener.Step(i, ts[i], latentNchw(latIn, shape, 1), latentNchw(raw, shape, rows),
                        latentNchw(eps, shape, 1), latentNchw(lat, shape, 1)));
            }
        }
        if (keep != PipelineListener.NONE) {
            keep.onTensor("step_latents_out", stack(stepLatents, shape, 1));
            keep.onTensor("step_unet_raw", stack(stepRaw, shape, rows));
            keep.onTensor("step_eps_guided", stack(stepGuided, shape, 1));
            keep.onTensor("final_latents", HostTensor.f32(Layouts.nhwcToNchw(lat, 1, shape[1], shape[2], shape[3]), 1, shape[3], shape[1], shape[2]));
        }
        return be.tensor(lat, shape);
    }

    /** e = e_uncond + g_t (e_text - e_image) + g_q (e_image - e_uncond), rows (text, image, uncond). */
    private static float[] guide(float[] raw, int n, float gt, float gq) {
        float[] e = new float[n];
        for (int i = 0; i < n; i++) {
            float text = raw[i], image = raw[n + i], uncond = raw[2 * n + i];
            e[i] = uncond + gt * (text - image) + gq * (image - uncond);
        }
        return e;
    }

    /** Supplied noise (NCHW, converted to channels-last) or a fresh N(0,1) draw shaped like {@code like}. */
    private float[] noise(float[] supplied, Tensor like, RandomGenerator rng, String what) {
        int[] s = like.shape();
        int n = Math.toIntExact(like.numel());
        float[] nchw;
        if (supplied != null) {
            if (supplied.length != n) throw new IllegalArgumentException(what + " has " + supplied.length + " values, " + n + " needed");
            nchw = supplied;
        } else {
            nchw = new float[n];
            for (int i = 0; i < n; i++) nchw[i] = (float) rng.nextGaussian();
        }
        return Layouts.nchwToNhwc(nchw, s[0], s[3], s[1], s[2]);
    }

    private HostTensor stack(float[][] steps, int[] nhwc, int rows) {
        int h = nhwc[1], w = nhwc[2], c = nhwc[3], per = h * w * c * rows;
        float[] out = new float[steps.length * per];
        for (int i = 0; i < steps.length; i++)
            System.arraycopy(Layouts.nhwcToNchw(steps[i], rows, h, w, c), 0, out, i * per, per);
        return HostTensor.f32(out, steps.length, rows, c, h, w);
    }

    /** A host NHWC latent of {@code rows} batch rows shaped like {@code nhwc} (one row) as an NCHW HostTensor. */
    private static HostTensor latentNchw(float[] hwc, int[] nhwc, int rows) {
        int h = nhwc[1], w = nhwc[2], c = nhwc[3];
        return HostTensor.f32(Layouts.nhwcToNchw(hwc, rows, h, w, c), rows, c, h, w);
    }

    private HostTensor nchw(Tensor t) {
        return HostTensor.f32(Layouts.nhwcToNchw(be.toHost(t), t.dim(0), t.dim(1), t.dim(2), t.dim(3)), t.dim(0), t.dim(3), t.dim(1), t.dim(2));
    }

    /** Makes {@link #close()} close the backend too (for a caller that made the backend only for this instance). */
    public RefLdmSeg closingBackend() {
        ownsBackend = true;
        return this;
    }

    /** Releases this instance; the backend is closed only after {@link #closingBackend()}: by default it is the caller's. */
    @Override
    public synchronized void close() {
        if (ownsBackend) be.close();
    }
}
