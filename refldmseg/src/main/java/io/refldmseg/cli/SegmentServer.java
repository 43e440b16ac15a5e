package io.refldmseg.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.javalin.Javalin;
import io.javalin.config.SizeUnit;
import io.javalin.http.Context;
import io.javalin.http.UploadedFile;
import io.refldmseg.pipeline.Augmentation;
import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Request;
import io.refldmseg.pipeline.Result;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Segmenter;
import io.refldmseg.pipeline.Support;

import java.io.IOException;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.LongAdder;

/**
 * The HTTP face of a {@link Segmenter} (Javalin on Jetty): {@code POST /v1/segment} (multipart:
 * {@code query}, repeated {@code support} / {@code support_mask}, option fields), {@code GET /healthz},
 * {@code GET /metrics} (Prometheus text). Bad requests get 400 naming the field, uploads over the
 * limit 413, a full queue 503 with Retry-After; the server keeps serving after any of them.
 */
public final class SegmentServer implements AutoCloseable {
    /** @param maxUploadBytes largest request body; @param deadline how long a request may wait and run */
    public record Settings(String host, int port, long maxUploadBytes, Duration deadline) {
    }

    /** The option fields a request may carry, with what they mean (the segment command's options). */
    static final List<String> OPTION_FIELDS = List.of("steps", "guidance", "image_guidance", "seed", "mask_alpha", "scheduler",
            "posterior", "ignore_label", "tta", "support_views");

    private final Segmenter segmenter;
    private final Settings settings;
    private final Javalin app;
    private final Map<String, LongAdder> byOutcome = new ConcurrentHashMap<>();
    private static final JsonFactory JSON = new JsonFactory();

    private SegmentServer(Segmenter segmenter, Settings settings) {
        this.segmenter = segmenter;
        this.settings = settings;
        this.app = Javalin.create(cfg -> {
            cfg.startup.showJavalinBanner = false;
            cfg.http.maxRequestSize = settings.maxUploadBytes();
            cfg.jetty.multipartConfig.maxFileSize(settings.maxUploadBytes(), SizeUnit.BYTES);
            cfg.jetty.multipartConfig.maxTotalRequestSize(settings.maxUploadBytes(), SizeUnit.BYTES);
            cfg.jetty.multipartConfig.maxInMemoryFileSize((int) Math.min(Integer.MAX_VALUE, settings.maxUploadBytes()), SizeUnit.BYTES);
            cfg.routes.get("/healthz", this::health);
            cfg.routes.get("/metrics", this::metrics);
            cfg.routes.post("/v1/segment", this::segment);
            cfg.routes.exception(Exception.class, (e, ctx) -> {
                if (isSizeLimit(e)) {
                    count("too_large");
                    error(ctx, 413, "upload larger than the limit of " + settings.maxUploadBytes() + " bytes");
                } else if (chain(e).contains("multipart")) {
                    count("bad_request");
                    error(ctx, 400, "malformed multipart body: " + chain(e));
                } else {
                    count("failed");
                    error(ctx, 500, "internal error: " + chain(e));
                }
            });
        });
    }

    /** Starts serving {@code segmenter}; port 0 picks a free port ({@link #port()}). */
    public static SegmentServer start(Segmenter segmenter, Settings settings) {
        SegmentServer s = new SegmentServer(segmenter, settings);
        s.app.start(settings.host(), settings.port());
        return s;
    }

    public Segmenter segmenter() {
        return segmenter;
    }

    public int port() {
        return app.port();
    }

    /** Stops taking connections, then lets the segmenter finish what it queued. */
    @Override
    public void close() {
        app.stop();
        segmenter.close();
    }

    /** Jetty reports an over-limit multipart part or body as an exception whose message says so. */
    private static boolean isSizeLimit(Throwable e) {
        String m = chain(e).toLowerCase();
        return m.contains("exceeds") || m.contains("exceeded") || m.contains("too large") || m.contains("413") || m.contains("max") && m.contains("size");
    }

    /** Every message in the cause chain, for one-line errors. */
    private static String chain(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable t = e; t != null && b.length() < 500; t = t.getCause()) b.append(b.isEmpty() ? "" : " <- ").append(t.getMessage());
        return b.toString();
    }

    private void count(String outcome) {
        byOutcome.computeIfAbsent(outcome, k -> new LongAdder()).increment();
    }

    private void health(Context ctx) throws IOException {
        RefLdmSeg seg = segmenter.engine();
        ctx.contentType("application/json").result(json(g -> {
            g.writeStringField("status", "ok");
            g.writeStringField("architecture", seg.architecture().name().toLowerCase());
            g.writeStringField("backend", seg.backend().name());
            g.writeNumberField("workers", segmenter.engines().size());
            g.writeNumberField("queued", segmenter.queued());
        }));
    }

    private void metrics(Context ctx) {
        Segmenter.Stats s = segmenter.stats();
        StringBuilder out = new StringBuilder();
        out.append("# HELP refldmseg_queue_depth Requests waiting.\n# TYPE refldmseg_queue_depth gauge\n")
                .append("refldmseg_queue_depth ").append(s.queued()).append('\n');
        out.append("# HELP refldmseg_requests_total HTTP requests to /v1/segment by outcome.\n# TYPE refldmseg_requests_total counter\n");
        byOutcome.forEach((k, v) -> out.append("refldmseg_requests_total{outcome=\"").append(k).append("\"} ").append(v.sum()).append('\n'));
        out.append("# HELP refldmseg_segmenter_total Segmenter outcomes.\n# TYPE refldmseg_segmenter_total counter\n");
        out.append("refldmseg_segmenter_total{outcome=\"completed\"} ").append(s.completed()).append('\n');
        out.append("refldmseg_segmenter_total{outcome=\"failed\"} ").append(s.failed()).append('\n');
        out.append("refldmseg_segmenter_total{outcome=\"rejected\"} ").append(s.rejected()).append('\n');
        out.append("refldmseg_segmenter_total{outcome=\"expired\"} ").append(s.expired()).append('\n');
        out.append("refldmseg_segmenter_total{outcome=\"cancelled\"} ").append(s.cancelled()).append('\n');
        out.append("# HELP refldmseg_batches_total Batches run, by requests in the batch.\n# TYPE refldmseg_batches_total counter\n");
        for (int size = 1; size < s.batchSizeCounts().length; size++)
            out.append("refldmseg_batches_total{size=\"").append(size).append("\"} ").append(s.batchSizeCounts()[size]).append('\n');
        out.append("# HELP refldmseg_batch_fallbacks_total Batches that failed (e.g. out of memory) and ran one request at a time.\n")
                .append("# TYPE refldmseg_batch_fallbacks_total counter\nrefldmseg_batch_fallbacks_total ").append(s.batchFallbacks()).append('\n');
        out.append("# HELP refldmseg_prompt_cache_total Instruction cache lookups.\n# TYPE refldmseg_prompt_cache_total counter\n");
        out.append("refldmseg_prompt_cache_total{result=\"hit\"} ").append(s.promptCacheHits()).append('\n');
        out.append("refldmseg_prompt_cache_total{result=\"miss\"} ").append(s.promptCacheMisses()).append('\n');
        out.append("# TYPE refldmseg_prompt_cache_bytes gauge\nrefldmseg_prompt_cache_bytes ").append(s.promptCacheBytes()).append('\n');
        out.append("# HELP refldmseg_request_seconds Queue wait plus run time of completed requests.\n# TYPE refldmseg_request_seconds histogram\n");
        long cumulative = 0;
        for (int i = 0; i < s.latencyCounts().length; i++) {
            cumulative += s.latencyCounts()[i];
            String le = i < s.latencyBucketsMillis().length ? String.valueOf(s.latencyBucketsMillis()[i] / 1000.0) : "+Inf";
            out.append("refldmseg_request_seconds_bucket{le=\"").append(le).append("\"} ").append(cumulative).append('\n');
        }
        out.append("refldmseg_request_seconds_sum ").append(s.latencySumSeconds()).append('\n');
        out.append("refldmseg_request_seconds_count ").append(cumulative).append('\n');
        ctx.contentType("text/plain; version=0.0.4").result(out.toString());
    }

    /** A 4xx the client caused, with the field named. */
    static final class BadRequest extends RuntimeException {
        BadRequest(String message) {
            super(message);
        }
    }

    private void segment(Context ctx) throws IOException {
        long length = ctx.req().getContentLengthLong();
        if (length > settings.maxUploadBytes()) {
            count("too_large");
            discardBody(ctx, length);
            error(ctx, 413, "upload of " + length + " bytes is larger than the limit of " + settings.maxUploadBytes());
            return;
        }
        Request request;
        try {
            request = parse(ctx);
        } catch (BadRequest | ImageFiles.ImageException | IllegalArgumentException e) {
            count("bad_request");
            error(ctx, 400, e.getMessage());
            return;
        }
        int copies;
        try {
            copies = count(ctx, "tta", Augmentation.COUNTS);
            request = Augmentation.withSupportViews(request, count(ctx, "support_views", Augmentation.VIEW_COUNTS), segmenter.engines().getFirst().tokenGrid());
        } catch (BadRequest e) {
            count("bad_request");
            error(ctx, 400, e.getMessage());
            return;
        }
        Segmenter.Done done;
        try {
            done = Augmentation.submit(segmenter, request, copies, settings.deadline()).get();
        } catch (Segmenter.Overloaded e) {
            count("overloaded");
            ctx.header("Retry-After", "1");
            error(ctx, 503, "overloaded: " + e.getMessage());
            return;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TimeoutException t) {
                count("deadline");
                ctx.header("Retry-After", "1");
                error(ctx, 503, "deadline: " + t.getMessage());
            } else if (e.getCause() instanceof IllegalArgumentException bad) {
                count("bad_request");
                error(ctx, 400, bad.getMessage());
            } else {
                count("failed");
                error(ctx, 500, "failed: " + e.getCause());
            }
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            count("failed");
            error(ctx, 503, "server shutting down");
            return;
        }
        count("ok");
        Result r = done.result();
        byte[] png = ImageFiles.maskPng(r.width(), r.height(), r.mask());
        String accept = ctx.header("Accept");
        if (accept != null && accept.contains("application/json")) {
            ctx.contentType("application/json").result(json(g -> {
                g.writeNumberField("width", r.width());
                g.writeNumberField("height", r.height());
                g.writeNumberField("foreground_fraction", (double) r.foregroundPixels() / ((long) r.width() * r.height()));
                g.writeStringField("mask_png_base64", Base64.getEncoder().encodeToString(png));
                g.writeNumberField("queue_wait_ms", done.queueMillis());
                g.writeBooleanField("prompt_cached", done.promptCached());
                g.writeObjectFieldStart("timings_ms");
                g.writeNumberField("prompt", r.timings().promptMillis());
                g.writeNumberField("vae_encode", r.timings().encodeMillis());
                g.writeNumberField("unet", r.timings().unetMillis());
                g.writeNumberField("vae_decode", r.timings().decodeMillis());
                g.writeNumberField("total", r.timings().totalMillis());
                g.writeEndObject();
            }));
        } else {
            ctx.contentType("image/png").result(png);
        }
    }

    private Request parse(Context ctx) throws IOException {
        String type = ctx.contentType();
        if (type == null || !type.toLowerCase().startsWith("multipart/form-data"))
            throw new BadRequest("expected multipart/form-data with fields query, support, support_mask");
        UploadedFile q = ctx.uploadedFile("query");
        if (q == null) throw new BadRequest("missing file field 'query'");
        List<UploadedFile> supports = ctx.uploadedFiles("support"), masks = ctx.uploadedFiles("support_mask");
        if (supports.isEmpty()) throw new BadRequest("missing file field 'support' (one per shot, with a matching 'support_mask')");
        if (supports.size() != masks.size())
            throw new BadRequest(supports.size() + " 'support' files but " + masks.size() + " 'support_mask' files: give one mask per support");
        RgbImage query = ImageFiles.readRgb(bytes(q), "field 'query'");
        List<Support> shots = new ArrayList<>();
        for (int i = 0; i < supports.size(); i++) {
            RgbImage img = ImageFiles.readRgb(bytes(supports.get(i)), "field 'support' #" + (i + 1));
            var mask = ImageFiles.readLabels(bytes(masks.get(i)), "field 'support_mask' #" + (i + 1));
            if (mask.width() != img.width() || mask.height() != img.height())
                throw new BadRequest("field 'support_mask' #" + (i + 1) + " is " + mask.width() + "x" + mask.height() + " but its support is "
                        + img.width() + "x" + img.height());
            shots.add(new Support(img, mask));
        }
        return new Request(query, shots, options(ctx));
    }

    private static byte[] bytes(UploadedFile f) throws IOException {
        try (var in = f.content()) {
            return in.readAllBytes();
        }
    }

    /** The option fields (names as in OPTION_FIELDS), each checked and named on error. */
    static Options options(Context ctx) {
        for (String name : ctx.formParamMap().keySet())
            if (!OPTION_FIELDS.contains(name) && !List.of("query", "support", "support_mask").contains(name))
                throw new BadRequest("unknown field '" + name + "' (options: " + String.join(", ", OPTION_FIELDS) + ")");
        Options o = Options.defaults();
        String v;
        if ((v = ctx.formParam("steps")) != null) o = o.withSteps(integer("steps", v));
        float g = o.guidance(), gq = o.imageGuidance();
        if ((v = ctx.formParam("guidance")) != null) g = number("guidance", v);
        if ((v = ctx.formParam("image_guidance")) != null) gq = number("image_guidance", v);
        if (!Float.isFinite(g) || !Float.isFinite(gq)) throw new BadRequest("fields 'guidance' and 'image_guidance' must be finite numbers");
        o = o.withGuidance(g, gq);
        if ((v = ctx.formParam("seed")) != null) {
            try {
                o = o.withSeed(Long.parseLong(v.trim()));
            } catch (NumberFormatException e) {
                throw new BadRequest("field 'seed': '" + v + "' is not an integer");
            }
        }
        if ((v = ctx.formParam("mask_alpha")) != null) o = o.withMaskAlpha(number("mask_alpha", v));
        if ((v = ctx.formParam("scheduler")) != null) o = o.withScheduler(switch (v.trim().toLowerCase()) {
            case "ddpm" -> Options.SchedulerKind.DDPM;
            case "ddim" -> Options.SchedulerKind.DDIM;
            default -> throw new BadRequest("field 'scheduler' must be ddpm or ddim, got '" + v + "'");
        });
        if ((v = ctx.formParam("posterior")) != null) o = o.withPosterior(switch (v.trim().toLowerCase()) {
            case "mode" -> Options.Posterior.MODE;
            case "sample" -> Options.Posterior.SAMPLE;
            default -> throw new BadRequest("field 'posterior' must be mode or sample, got '" + v + "'");
        });
        if ((v = ctx.formParam("ignore_label")) != null) o = o.withIgnoreLabel(integer("ignore_label", v));
        return o;
    }

    /**
     * A count field, 1 when absent, else one of {@code allowed}: 'tta' (copies of the request to average,
     * {@link Augmentation#COUNTS}) and 'support_views' (views of each support, {@link Augmentation#VIEW_COUNTS}).
     */
    static int count(Context ctx, String field, List<Integer> allowed) {
        String v = ctx.formParam(field);
        if (v == null) return 1;
        int n = integer(field, v);
        if (!allowed.contains(n)) throw new BadRequest("field '" + field + "' must be " + Augmentation.spelled(allowed) + ", got " + n);
        return n;
    }

    private static int integer(String field, String v) {
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new BadRequest("field '" + field + "': '" + v + "' is not an integer");
        }
    }

    private static float number(String field, String v) {
        try {
            return Float.parseFloat(v.trim());
        } catch (NumberFormatException e) {
            throw new BadRequest("field '" + field + "': '" + v + "' is not a number");
        }
    }

    private interface JsonBody {
        void write(JsonGenerator g) throws IOException;
    }

    private static String json(JsonBody body) throws IOException {
        StringWriter w = new StringWriter();
        try (JsonGenerator g = JSON.createGenerator(w)) {
            g.writeStartObject();
            body.write(g);
            g.writeEndObject();
        }
        return w.toString();
    }

    /** The most of a refused upload read and dropped before the answer (larger ones are cut off unread). */
    private static final long MAX_DISCARDED_BYTES = 64L << 20;

    /**
     * Reads and drops a refused body (up to {@link #MAX_DISCARDED_BYTES}) and closes the connection
     * after the answer: closing with the upload still unread made the client's TCP stack reset the
     * connection, and the client then sometimes got no answer at all instead of the 413.
     */
    private static void discardBody(Context ctx, long length) {
        ctx.header("Connection", "close");
        if (length > MAX_DISCARDED_BYTES) return;
        try (java.io.InputStream in = ctx.req().getInputStream()) {
            in.transferTo(java.io.OutputStream.nullOutputStream());
        } catch (IOException e) {
            // the client went away: nothing left to answer
        }
    }

    private static void error(Context ctx, int status, String message) {
        try {
            ctx.status(status).contentType("application/json").result(json(g -> g.writeStringField("error", message)));
        } catch (IOException e) {
            ctx.status(status).result(message);
        }
    }
}
