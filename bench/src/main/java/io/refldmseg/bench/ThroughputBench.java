package io.refldmseg.bench;

import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.eval.SyntheticScenes;
import io.refldmseg.pipeline.LabelMap;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Result;
import io.refldmseg.pipeline.Request;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Segmenter;
import io.refldmseg.pipeline.Support;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * Serving throughput: images/s and p50/p99 latency through {@link Segmenter} for each max batch x
 * client concurrency, against sequential {@link RefLdmSeg#segment} calls in the same run.
 * Synthetic-scene queries, all different. SUPPORTS {@code one}: one support whose instruction
 * both sides reuse (the prompt cache on the service side, a prompt made once on the sequential
 * side), as in video or a fixed reference; {@code each}: every request its own support (dataset
 * annotation, evaluation), so both sides run the tower for every request.
 *
 * <pre>ThroughputBench DIR|tiny REQUESTS [BATCHES=1,2,4,8] [CLIENTS=1,4,16] [MAX_WAIT_MS=5] [SUPPORTS=one|each] [WORKERS=1]</pre>
 * WORKERS (e.g. 1,2): the service rows run on that many engines, each its own worker on cores / WORKERS
 * threads (then a row's stage times are one engine's, on its share of the cores).
 * DIR holds unet/vae/clip.safetensors (e.g. from {@link WriteSyntheticCheckpoints}); "tiny" uses
 * the test fixtures. JSON goes to bench/results/throughput-&lt;time&gt;.json.
 */
public final class ThroughputBench {
    record Row(int workers, int maxBatch, int clients, int requests, double seconds, double imagesPerSecond, double p50Ms, double p99Ms,
               double meanBatch, Stages stages) {
    }

    /**
     * Mean milliseconds per image of each pipeline stage, from the results' {@link Result.Timings}
     * (a batch's UNet time is shared evenly by its requests), to see where batching gains or loses.
     */
    static final class Stages {
        private final LongAdder encode = new LongAdder(), unet = new LongAdder(), decode = new LongAdder(), count = new LongAdder();

        void add(Result r) {
            encode.add(r.timings().encodeMillis());
            unet.add(r.timings().unetMillis());
            decode.add(r.timings().decodeMillis());
            count.increment();
        }

        private double mean(LongAdder a) {
            return count.sum() == 0 ? Double.NaN : (double) a.sum() / count.sum();
        }

        String json() {
            return String.format("{\"encode_ms\":%.1f,\"unet_ms\":%.1f,\"decode_ms\":%.1f}", mean(encode), mean(unet), mean(decode));
        }

        @Override
        public String toString() {
            return String.format("%7.0f %7.0f %7.0f", mean(encode), mean(unet), mean(decode));
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) throw new IllegalArgumentException("usage: ThroughputBench DIR|tiny REQUESTS [BATCHES] [CLIENTS] [MAX_WAIT_MS] [SUPPORTS=one|each]");
        Path dir = args[0].equals("tiny") ? Path.of("testdata/fixtures") : Path.of(args[0]);
        RefLdmSeg.Checkpoints c = args[0].equals("tiny")
                ? new RefLdmSeg.Checkpoints(dir.resolve("unet_diffusers.safetensors"), dir.resolve("vae_diffusers.safetensors"), dir.resolve("alphaclip_visual.safetensors"))
                : new RefLdmSeg.Checkpoints(dir.resolve("unet.safetensors"), dir.resolve("vae.safetensors"), dir.resolve("clip.safetensors"));
        int requests = Integer.parseInt(args[1]);
        int[] batches = ints(args.length > 2 ? args[2] : "1,2,4,8"), clients = ints(args.length > 3 ? args[3] : "1,4,16");
        long maxWaitMs = args.length > 4 ? Long.parseLong(args[4]) : 5;
        String supportMode = args.length > 5 ? args[5] : "one";
        if (!supportMode.equals("one") && !supportMode.equals("each"))
            throw new IllegalArgumentException("SUPPORTS is one or each, got " + supportMode);
        boolean each = supportMode.equals("each");
        int[] workerCounts = ints(args.length > 6 ? args[6] : "1");
        List<RgbImage> queries = new ArrayList<>();
        for (int i = 0; i < 16; i++) queries.add(SyntheticScenes.scene(4242, i).image());
        // with "each", request i of a row takes support set i: no row repeats one, so no prompt comes from the cache
        List<List<Support>> supportSets = new ArrayList<>();
        for (int i = 0; i < (each ? requests : 1); i++) {
            SyntheticScenes.Scene s = SyntheticScenes.scene(4243, i);
            supportSets.add(List.of(new Support(s.image(), new LabelMap(256, 256, s.mask(s.firstKind())))));
        }
        Options o = Options.defaults();
        try (RefLdmSeg seg = RefLdmSeg.load(c, new CpuBackend(), line -> { }).closingBackend()) {
            System.out.println("backend: " + seg.backend().name() + ", architecture -" + seg.architecture().name().toLowerCase() + ", models " + args[0]
                    + ", supports: " + (each ? "each request its own" : "one for all"));
            RefLdmSeg.Prompt prompt = seg.prompt(supportSets.getFirst(), -1);
            int[] warm = {0};
            WarmUp.run(() -> {
                int i = warm[0]++;
                if (each) seg.segment(queries.get(i % 16), supportSets.get(i % supportSets.size()), o);
                else seg.segment(queries.get(i % 16), prompt, o);
            }, 4, Duration.ofSeconds(30));
            // sequential before and after the served rows, the faster one the baseline: a run still warming up would flatter the rows
            Row before = sequential(seg, queries, each, supportSets, prompt, o, requests);
            List<Row> rows = new ArrayList<>();
            for (int w : workerCounts) {
                List<RefLdmSeg> engines = new ArrayList<>();
                if (w == 1) engines.add(seg);
                else for (int i = 0; i < w; i++) { // w fresh engines splitting the cores, warmed once each; the 2-thread one waits
                    RefLdmSeg e = RefLdmSeg.load(c, new CpuBackend(Math.max(1, CpuBackend.cores() / w)), line -> { }).closingBackend();
                    engines.add(e);
                    e.segment(queries.getFirst(), supportSets.getFirst(), o);
                }
                try {
                    for (int b : batches)
                        for (int k : clients) rows.add(serve(engines, queries, each, supportSets, o, requests, b, k, maxWaitMs));
                } finally {
                    if (w > 1) engines.forEach(RefLdmSeg::close);
                }
            }
            Row after = sequential(seg, queries, each, supportSets, prompt, o, requests);
            Row sequential = after.imagesPerSecond() > before.imagesPerSecond() ? after : before;
            Stages seqStages = sequential.stages();
            double seqSeconds = sequential.seconds();
            System.out.printf("%nsequential RefLdmSeg.segment before the rows %.3f images/s, after them %.3f; the baseline is the faster:", before.imagesPerSecond(), after.imagesPerSecond());
            System.out.printf("%nsequential RefLdmSeg.segment: %d requests in %.1f s, %.3f images/s, p50 %.0f ms, p99 %.0f ms; per image: encode, UNet, decode %s ms%n",
                    requests, seqSeconds, sequential.imagesPerSecond(), sequential.p50Ms(), sequential.p99Ms(), seqStages);
            System.out.printf("%-8s %-9s %-7s %10s %8s %9s %9s %10s %7s %7s %7s%n", "workers", "maxBatch", "clients", "images/s", "x seq", "p50 ms", "p99 ms", "mean batch",
                    "enc ms", "UNet ms", "dec ms");
            StringBuilder json = new StringBuilder("{\"date\":\"" + Instant.now() + "\",\"backend\":\"" + seg.backend().name() + "\",\"models\":\""
                    + args[0] + "\",\"supports\":\"" + supportMode + "\",\"requests\":" + requests + ",\"max_wait_ms\":" + maxWaitMs
                    + String.format(",\"sequential_before_rows\":%.4f,\"sequential_after_rows\":%.4f,\"sequential\":{\"images_per_s\":%.4f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"stages\":%s},\"rows\":[", before.imagesPerSecond(), after.imagesPerSecond(), sequential.imagesPerSecond(), sequential.p50Ms(), sequential.p99Ms(), seqStages.json()));
            String sep = "";
            for (Row r : rows) {
                double ratio = r.imagesPerSecond() / sequential.imagesPerSecond();
                System.out.printf("%-8d %-9d %-7d %10.3f %8.2f %9.0f %9.0f %10.2f %s%n", r.workers(), r.maxBatch(), r.clients(), r.imagesPerSecond(), ratio, r.p50Ms(), r.p99Ms(), r.meanBatch(), r.stages());
                json.append(sep).append(String.format("{\"workers\":%d,\"max_batch\":%d,\"clients\":%d,\"images_per_s\":%.4f,\"ratio_to_sequential\":%.3f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"mean_batch\":%.2f,\"stages\":%s}",
                        r.workers(), r.maxBatch(), r.clients(), r.imagesPerSecond(), ratio, r.p50Ms(), r.p99Ms(), r.meanBatch(), r.stages().json()));
                sep = ",";
            }
            json.append("]}\n");
            ResultFiles.write("throughput", json);
        }
    }

    /** {@code requests} calls of {@link RefLdmSeg#segment} one after another on the calling thread: each with support set i when {@code each}, else all with {@code prompt}. */
    private static Row sequential(RefLdmSeg seg, List<RgbImage> queries, boolean each, List<List<Support>> supportSets, RefLdmSeg.Prompt prompt, Options o, int requests) {
        double[] latency = new double[requests];
        Stages stages = new Stages();
        long t0 = System.nanoTime();
        for (int i = 0; i < requests; i++) {
            long a = System.nanoTime();
            stages.add(each ? seg.segment(queries.get(i % 16), supportSets.get(i), o) : seg.segment(queries.get(i % 16), prompt, o));
            latency[i] = (System.nanoTime() - a) / 1e6;
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        return new Row(1, 0, 1, requests, seconds, requests / seconds, percentile(latency, 50), percentile(latency, 99), 1, stages);
    }

    /** {@code requests} requests from {@code clients} threads, each waiting for its answer before sending the next; request i takes support set i modulo their number. */
    private static Row serve(List<RefLdmSeg> engines, List<RgbImage> queries, boolean each, List<List<Support>> supportSets, Options o, int requests, int maxBatch, int clients,
                             long maxWaitMs) throws Exception {
        double[] latency = new double[requests];
        Stages stages = new Stages();
        AtomicInteger next = new AtomicInteger();
        try (Segmenter segmenter = new Segmenter(engines, new Segmenter.Config(Math.max(64, clients * 2), null, 64L << 20, maxBatch, Duration.ofMillis(maxWaitMs)))) {
            if (!each) segmenter.submit(new Request(queries.getFirst(), supportSets.getFirst(), o)).get(); // fills the prompt cache
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            long t0 = System.nanoTime();
            List<Future<?>> done = new ArrayList<>();
            for (int k = 0; k < clients; k++)
                done.add(pool.submit(() -> {
                    for (int i; (i = next.getAndIncrement()) < requests; ) {
                        long a = System.nanoTime();
                        stages.add(segmenter.submit(new Request(queries.get(i % 16), supportSets.get(i % supportSets.size()), o)).get().result());
                        latency[i] = (System.nanoTime() - a) / 1e6;
                    }
                    return null;
                }));
            for (Future<?> f : done) f.get();
            double seconds = (System.nanoTime() - t0) / 1e9;
            pool.shutdown();
            Segmenter.Stats stats = segmenter.stats();
            if (stats.batchFallbacks() > 0)
                System.out.println("  " + stats.batchFallbacks() + " batches failed and ran one by one; last: " + stats.lastBatchFailure());
            long[] sizes = stats.batchSizeCounts();
            long batches = 0, served = 0;
            for (int size = 1; size < sizes.length; size++) {
                batches += sizes[size];
                served += size * sizes[size];
            }
            Row r = new Row(engines.size(), maxBatch, clients, requests, seconds, requests / seconds, percentile(latency, 50), percentile(latency, 99),
                    batches == 0 ? 0 : (double) served / batches, stages);
            System.out.printf("  %d worker%s, max batch %d, %2d clients: %.3f images/s, p50 %.0f ms, p99 %.0f ms, mean batch %.2f; per image: encode, UNet, decode %s ms%n",
                    engines.size(), engines.size() == 1 ? "" : "s", maxBatch, clients, r.imagesPerSecond(), r.p50Ms(), r.p99Ms(), r.meanBatch(), stages);
            return r;
        }
    }

    private static double percentile(double[] values, double p) {
        double[] v = values.clone();
        Arrays.sort(v);
        return v[Math.min(v.length - 1, (int) Math.ceil(p / 100 * v.length) - 1)];
    }

    private static int[] ints(String csv) {
        return Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
    }
}
