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
import io.refldmseg.model.AttentionLayers;
import io.refldmseg.model.AttentionProcessor;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.UNet2DConditionModel;

import java.nio.file.Path;
import java.util.ArrayList;
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
    private final Prompter prompter;
    private final LatentPredictor predictor;
    private volatile boolean ownsBackend;
    private volatile boolean compactBetweenStages;

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
        this.prompter = new Prompter(backend, tower, prep);
        this.predictor = arch == Architecture.F ? new SingleStepPredictor(backend, unet, latentScale)
                : new Denoiser(backend, unet, prompter, () -> progress);
        if (arch == Architecture.N) prompter.nullTokens(1); // made now, outside any request's memory scope
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

    /** The vision tower's token grid (tokens a side of a support), which {@link Augmentation#supportViews} shifts against. */
    public int tokenGrid() {
        return tower.config().gridSize();
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
        return prompter.prompt(supports, ignoreLabel, PipelineListener.NONE);
    }

    /**
     * The prompts of several requests, their support images through the tower as one batch;
     * prompt i equals {@code prompt(supports.get(i), ignoreLabels.get(i))} bit for bit.
     */
    public synchronized List<Prompt> prompts(List<List<Support>> supports, List<Integer> ignoreLabels) {
        return prompter.prompts(supports, ignoreLabels);
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
            Prompt p = promptReleasing(supports, o.ignoreLabel(), keep);
            stageDone();
            long promptNanos = System.nanoTime() - t0;
            return run(encodeReleasing(query), p, o, keep, kept, promptNanos);
        });
    }

    public Result segment(RgbImage query, Prompt prompt, Options o) {
        return segment(query, prompt, o, PipelineListener.NONE);
    }

    public synchronized Result segment(RgbImage query, Prompt prompt, Options o, PipelineListener listener) {
        PipelineListener.TensorCollector kept = o.keepTensors() ? new PipelineListener.TensorCollector() : null;
        return scoped(() -> run(encodeReleasing(query), prompt, o, listening(kept, listener), kept, 0));
    }

    /**
     * Several requests as one batch through the UNet (-n: every request's CFG rows in one call per
     * step); the VAE encodes and decodes them one at a time (at 256 x 256 its GEMMs are large at
     * batch 1, and a batch would hold several images' activations at once). Result i equals
     * {@code segment(queries[i], prompts[i], options[i])} bit for bit. The requests must be
     * {@link #batchable} with one another.
     */
    public synchronized List<Result> segmentBatch(List<RgbImage> queries, List<Prompt> prompts, List<Options> options) {
        int b = queries.size();
        if (b == 0 || prompts.size() != b || options.size() != b)
            throw new IllegalArgumentException("a batch needs as many prompts and options as queries, got " + b + "/" + prompts.size() + "/" + options.size());
        for (int i = 1; i < b; i++)
            if (!batchable(prompts.getFirst(), options.getFirst(), prompts.get(i), options.get(i)))
                throw new IllegalArgumentException("request " + i + " of the batch cannot share a batch with request 0 (shots, steps, scheduler or guidance differ)");
        if (b == 1) return List.of(segment(queries.getFirst(), prompts.getFirst(), options.getFirst()));
        return scoped(() -> {
            List<EncodedQuery> encoded = queries.stream().map(this::encodeReleasing).toList();
            List<RandomGenerator> rngs = options.stream().map(RefLdmSeg::rng).toList();
            long t1 = System.nanoTime();
            Tensor latents = predictor.predictBatch(encoded.stream().map(EncodedQuery::posterior).toList(), prompts, options, rngs);
            long t2 = System.nanoTime();
            List<Result> out = new ArrayList<>();
            for (int i = 0; i < b; i++) {
                out.add(decodeAndFinish(encoded.get(i), be.sliceBatch(latents, i, 1), options.get(i), (t2 - t1) / b, 0, System.nanoTime(),
                        PipelineListener.NONE, null));
            }
            return out;
        });
    }

    /** The prompt with the tower's intermediates released: only the instruction tensors outlive it. */
    private Prompt promptReleasing(List<Support> supports, int ignoreLabel, PipelineListener keep) {
        try (Backend.Scope s = be.scope()) {
            Prompt p = prompter.prompt(supports, ignoreLabel, keep);
            return new Prompt(s.keep(p.tokens()), s.keep(p.keyMask()), s.keep(p.softKeyMask()), p.shots());
        }
    }

    /** {@link #encode} with the encoder's intermediates released: only the input and the posterior outlive it. */
    private EncodedQuery encodeReleasing(RgbImage query) {
        try (Backend.Scope s = be.scope()) {
            EncodedQuery q = encode(query);
            AutoencoderKL.Posterior post = new AutoencoderKL.Posterior(s.keep(q.posterior().mean()), s.keep(q.posterior().logvar()));
            return new EncodedQuery(q.image(), q.geometry(), s.keep(q.x()), post, q.nanos());
        }
    }

    /** Whether two requests may run in one {@link #segmentBatch}: same shots and token count, no tensors kept, and options the predictor can step together. */
    public boolean batchable(Prompt a, Options oa, Prompt b, Options ob) {
        return a.shots() == b.shots() && java.util.Arrays.equals(a.tokens().shape(), b.tokens().shape()) && batchable(oa, ob);
    }

    /** The same check before the prompts exist: the same number of supports (the token count follows from it). */
    public boolean batchable(Request a, Request b) {
        return a.supports().size() == b.supports().size() && batchable(a.options(), b.options());
    }

    private boolean batchable(Options a, Options b) {
        return !a.keepTensors() && !b.keepTensors() && predictor.batchable(a, b);
    }

    private static PipelineListener listening(PipelineListener.TensorCollector kept, PipelineListener listener) {
        return PipelineListener.both(kept == null ? PipelineListener.NONE : kept, java.util.Objects.requireNonNull(listener, "listener"));
    }

    /** Runs {@code body} and then frees the backend memory it made (results are host data by then). */
    private <T> T scoped(java.util.function.Supplier<T> body) {
        return HostCopies.scoped(be, body);
    }

    /** Video: the first frame and its mask are the prompt for every later frame (tokens computed once). */
    public List<Result> segmentVideo(List<RgbImage> frames, LabelMap firstMask, Options o) {
        return segmentVideo(frames, firstMask, o, 1);
    }

    /** The same with the first frame passed as {@code supportViews} views of it ({@link Augmentation#supportViews}). */
    public synchronized List<Result> segmentVideo(List<RgbImage> frames, LabelMap firstMask, Options o, int supportViews) {
        if (frames.size() < 2) throw new IllegalArgumentException("a video needs at least two frames (the first is the prompt)");
        List<Support> first = Augmentation.supportViews(List.of(new Support(frames.getFirst(), firstMask)), supportViews, tokenGrid());
        Prompt p = prompter.prompt(first, o.ignoreLabel(), PipelineListener.NONE);
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
                each.add(scoped(() -> run(encoded, prompter.prompt(supports, o.ignoreLabel(), PipelineListener.NONE), o, PipelineListener.NONE, null, 0)));
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

    /** The request's random stream (posterior draw, -n noise), from its seed. */
    private static RandomGenerator rng(Options o) {
        return RandomGeneratorFactory.of("L64X128MixRandom").create(o.seed());
    }

    /** The decoded pseudo mask minus the image term: mask_alpha x the query (the architecture's default alpha unless set). */
    private Tensor logits(Tensor decoded, EncodedQuery q, Options o) {
        float alpha = o.maskAlpha() != null ? o.maskAlpha() : arch.defaultMaskAlpha();
        return be.axpby(1f, decoded, -alpha, q.x());
    }

    private Result run(EncodedQuery q, Prompt p, Options o, PipelineListener keep, PipelineListener.TensorCollector kept, long promptNanos) {
        AutoencoderKL.Posterior post = q.posterior();
        if (keep != PipelineListener.NONE) {
            keep.onTensor("latent_mean", HostCopies.nchw(be, post.mean()));
            keep.onTensor("latent_logvar", HostCopies.nchw(be, post.logvar()));
        }
        long t1 = System.nanoTime();
        stageDone();
        Tensor latent;
        try (Backend.Scope unetScope = be.scope()) { // only the predicted latent outlives the UNet
            latent = unetScope.keep(predictor.predict(post, p, o, rng(o), keep));
        }
        long t2 = System.nanoTime();
        stageDone();
        return decodeAndFinish(q, latent, o, t2 - t1, promptNanos, t2, keep, kept);
    }

    /** The VAE decode of one request's latent and its {@link #finish}, in a scope: finish copies the mask to the host, so nothing of the decode outlives it. */
    private Result decodeAndFinish(EncodedQuery q, Tensor latent, Options o, long unetNanos, long promptNanos, long decodeStart,
                                   PipelineListener keep, PipelineListener.TensorCollector kept) {
        try (Backend.Scope decode = be.scope()) {
            Tensor decoded = vae.decode(be.scale(latent, 1f / latentScale));
            return finish(q, logits(decoded, q, o), q.nanos(), unetNanos, promptNanos, decodeStart, keep, kept);
        }
    }

    /** Logits [1, 256, 256, 3] of one request -> its mask at the query's size, with the timings. */
    private Result finish(EncodedQuery q, Tensor logits, long encodeNanos, long unetNanos, long promptNanos, long decodeStart,
                          PipelineListener keep, PipelineListener.TensorCollector kept) {
        if (keep != PipelineListener.NONE) {
            HostTensor l = HostCopies.nchw(be, logits);
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
        Result.Timings tm = new Result.Timings(promptNanos / 1_000_000, encodeNanos / 1_000_000, unetNanos / 1_000_000,
                (t3 - decodeStart) / 1_000_000, (promptNanos + encodeNanos + unetNanos + t3 - decodeStart) / 1_000_000);
        return new Result(w, h, mask, chw, kept == null ? Map.of() : kept.tensors(), tm);
    }



    /**
     * Makes every request give back the memory of each finished stage (tower, VAE encoder, UNet)
     * before the next one starts: the backend's workspace is released and the heap collected in
     * full, so a run's peak memory is the weights plus its largest stage rather than the sum of
     * stages the young collections promoted. Costs one full collection per stage (a few hundred ms
     * with full-size weights, counted in the timings of the stage that follows it, the prompt's in
     * the prompt): for one-shot runs such as the CLI's {@code segment}, not for servers.
     */
    public RefLdmSeg compactingBetweenStages() {
        compactBetweenStages = true;
        return this;
    }

    private void stageDone() {
        if (!compactBetweenStages) return;
        be.releaseWorkspace();
        System.gc(); // a one-shot run wants the dead stage's promoted arrays back, and only a full collection reclaims them
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
