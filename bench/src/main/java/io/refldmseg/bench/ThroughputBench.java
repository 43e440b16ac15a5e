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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
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
 * <pre>ThroughputBench DIR|tiny REQUESTS [BATCHES=1,2,4,8] [CLIENTS=1,4,16] [MAX_WAIT_MS=5] [SUPPORTS=one|each] [WORKERS=1] [ROUNDS=1]</pre>
 * WORKERS (e.g. 1,2): the service rows run on that many engines, each its own worker on cores / WORKERS
 * threads (then a row's stage times are one engine's, on its share of the cores). ROUNDS: the rows
 * are measured that many times, each round followed by sequential calls (and the first preceded
 * by them); a row's ratio is the median over rounds of its images/s against the mean of the
 * sequential runs on either side of it, as a shared VM's speed drifts within minutes.
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

        void addAll(Stages other) {
            encode.add(other.encode.sum());
            unet.add(other.unet.sum());
            decode.add(other.decode.sum());
            count.add(other.count.sum());
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
        if (args.length < 2) throw new IllegalArgumentException("usage: ThroughputBench DIR|tiny REQUESTS [BATCHES] [CLIENTS] [MAX_WAIT_MS] [SUPPORTS=one|each] [WORKERS] [ROUNDS]");
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
        int rounds = args.length > 7 ? Integer.parseInt(args[7]) : 1;
        if (rounds < 1) throw new IllegalArgumentException("ROUNDS must be at least 1, got " + rounds);
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
            // every round: the served rows (in reversed order every other round), then sequential calls; a row's ratio is to the
            // mean of the sequential runs just before and just after it, so the drift of a shared VM falls on both sides
            List<Spec> specs = new ArrayList<>();
            for (int w : workerCounts)
                for (int b : batches)
                    for (int k : clients) specs.add(new Spec(w, b, k));
            Map<Integer, List<RefLdmSeg>> enginesByCount = new LinkedHashMap<>();
            List<Row> sequentialRuns = new ArrayList<>();
            Map<Spec, List<Row>> served = new LinkedHashMap<>();
            try {
                for (int w : workerCounts) enginesByCount.put(w, engines(seg, c, w, queries.getFirst(), supportSets.getFirst(), o));
                sequentialRuns.add(sequential(seg, queries, each, supportSets, prompt, o, requests));
                for (int round = 0; round < rounds; round++) {
                    List<Spec> order = new ArrayList<>(specs);
                    if (round % 2 == 1) java.util.Collections.reverse(order);
                    Map<Spec, Row> thisRound = new LinkedHashMap<>();
                    for (Spec sp : order)
                        thisRound.put(sp, serve(enginesByCount.get(sp.workers()), queries, each, supportSets, o, requests, sp.maxBatch(), sp.clients(), maxWaitMs));
                    Row seqBefore = sequentialRuns.getLast(), seqAfter = sequential(seg, queries, each, supportSets, prompt, o, requests);
                    sequentialRuns.add(seqAfter);
                    System.out.printf("  round %d: sequential %.3f images/s before the rows, %.3f after%n", round + 1, seqBefore.imagesPerSecond(), seqAfter.imagesPerSecond());
                    for (Spec sp : specs) served.computeIfAbsent(sp, x -> new ArrayList<>()).add(thisRound.get(sp));
                }
            } finally {
                enginesByCount.values().forEach(list -> list.stream().filter(e -> e != seg).forEach(RefLdmSeg::close));
            }
            double[] seqRates = sequentialRuns.stream().mapToDouble(Row::imagesPerSecond).toArray();
            Stages seqStages = new Stages();
            sequentialRuns.forEach(r -> seqStages.addAll(r.stages()));
            System.out.printf("%nsequential RefLdmSeg.segment, %d runs of %d requests: median %.3f images/s (%.3f..%.3f); per image: encode, UNet, decode %s ms%n",
                    seqRates.length, requests, Stats.median(seqRates), Arrays.stream(seqRates).min().orElseThrow(), Arrays.stream(seqRates).max().orElseThrow(), seqStages);
            System.out.printf("x seq: the median over %d round%s of images/s / the mean of the sequential runs before and after that round's rows (q1..q3)%n",
                    rounds, rounds == 1 ? "" : "s");
            System.out.printf("%-8s %-9s %-7s %10s %8s %13s %9s %9s %10s %7s %7s %7s%n", "workers", "maxBatch", "clients", "images/s", "x seq", "(q1..q3)",
                    "p50 ms", "p99 ms", "mean batch", "enc ms", "UNet ms", "dec ms");
            StringBuilder json = new StringBuilder("{\"date\":\"" + Instant.now() + "\",\"backend\":\"" + seg.backend().name() + "\",\"models\":\""
                    + args[0] + "\",\"supports\":\"" + supportMode + "\",\"requests\":" + requests + ",\"max_wait_ms\":" + maxWaitMs + ",\"rounds\":" + rounds
                    + ",\"sequential_images_per_s\":" + Arrays.toString(Arrays.stream(seqRates).map(r -> Math.round(r * 10000) / 10000.0).toArray())
                    + String.format(Locale.ROOT, ",\"sequential_stages\":%s,\"rows\":[", seqStages.json()));
            String sep = "";
            for (Spec sp : specs) {
                List<Row> rs = served.get(sp);
                double[] rate = rs.stream().mapToDouble(Row::imagesPerSecond).toArray(), ratio = bracketedRatios(rate, seqRates);
                double[] p50 = rs.stream().mapToDouble(Row::p50Ms).toArray(), p99 = rs.stream().mapToDouble(Row::p99Ms).toArray(), batch = rs.stream().mapToDouble(Row::meanBatch).toArray();
                Stages st = new Stages();
                rs.forEach(r -> st.addAll(r.stages()));
                System.out.printf("%-8d %-9d %-7d %10.3f %8.2f %13s %9.0f %9.0f %10.2f %s%n", sp.workers(), sp.maxBatch(), sp.clients(), Stats.median(rate), Stats.median(ratio),
                        String.format(Locale.ROOT, "(%.2f..%.2f)", Stats.quantile(ratio, 0.25), Stats.quantile(ratio, 0.75)), Stats.median(p50), Stats.median(p99), Stats.median(batch), st);
                json.append(sep).append(String.format(Locale.ROOT, "{\"workers\":%d,\"max_batch\":%d,\"clients\":%d,\"images_per_s\":%.4f,\"ratio_to_sequential\":%.3f,"
                                + "\"ratio_q1\":%.3f,\"ratio_q3\":%.3f,\"ratios\":%s,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"mean_batch\":%.2f,\"stages\":%s}",
                        sp.workers(), sp.maxBatch(), sp.clients(), Stats.median(rate), Stats.median(ratio), Stats.quantile(ratio, 0.25), Stats.quantile(ratio, 0.75),
                        Arrays.toString(Arrays.stream(ratio).map(r -> Math.round(r * 1000) / 1000.0).toArray()), Stats.median(p50), Stats.median(p99), Stats.median(batch), st.json()));
                sep = ",";
            }
            json.append("]}\n");
            ResultFiles.write("throughput", json);
        }
    }

    /**
     * Round r's served rate over the mean of the sequential rates just before (index r) and just
     * after (r + 1) its rows: {@code sequential} holds one more rate than {@code served}.
     */
    static double[] bracketedRatios(double[] served, double[] sequential) {
        if (sequential.length != served.length + 1)
            throw new IllegalArgumentException(served.length + " rounds need " + (served.length + 1) + " sequential runs, got " + sequential.length);
        double[] ratio = new double[served.length];
        for (int r = 0; r < served.length; r++) ratio[r] = served[r] / ((sequential[r] + sequential[r + 1]) / 2);
        return ratio;
    }

    /** One served configuration: engines, max batch, client threads. */
    record Spec(int workers, int maxBatch, int clients) {
    }

    /** The engines of a row of {@code workers}: the loaded one alone, or that many fresh ones splitting the cores, each warmed once. */
    private static List<RefLdmSeg> engines(RefLdmSeg seg, RefLdmSeg.Checkpoints c, int workers, RgbImage query, List<Support> supports, Options o) throws IOException {
        if (workers == 1) return List.of(seg);
        List<RefLdmSeg> engines = new ArrayList<>();
        for (int i = 0; i < workers; i++) {
            RefLdmSeg e = RefLdmSeg.load(c, new CpuBackend(Math.max(1, CpuBackend.cores() / workers)), line -> { }).closingBackend();
            engines.add(e);
            e.segment(query, supports, o);
        }
        return engines;
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
