package io.refldmseg.cli;

import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.LabelMap;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Request;
import io.refldmseg.pipeline.Result;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Segmenter;
import io.refldmseg.pipeline.Support;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.*;

/** The serving path with the tiny models: a real HTTP client against a server on 127.0.0.1, and the Segmenter under it. */
class ServerTest {
    static final Path SAMPLES = Fixtures.dir().resolve("../../samples").normalize();
    static RefLdmSeg seg;
    static byte[] query, support, supportMask;

    @TempDir
    static Path dir;

    @BeforeAll
    static void load() throws IOException {
        seg = RefLdmSeg.load(new RefLdmSeg.Checkpoints(Fixtures.file("unet_diffusers.safetensors"), Fixtures.file("vae_diffusers.safetensors"),
                Fixtures.file("alphaclip_visual.safetensors")), new CpuBackend(), s -> {
        });
        query = Files.readAllBytes(SAMPLES.resolve("query.png"));
        support = Files.readAllBytes(SAMPLES.resolve("support.png"));
        supportMask = Files.readAllBytes(SAMPLES.resolve("support_mask.png"));
    }

    @AfterAll
    static void close() {
        seg.close();
    }

    static Request request(byte[] q) {
        return new Request(ImageFiles.readRgb(q, "q"), List.of(new Support(ImageFiles.readRgb(support, "s"), ImageFiles.readLabels(supportMask, "m"))));
    }

    /** A multipart body: name -> (filename, bytes) for files, or a plain value for fields. */
    static HttpRequest.Builder multipart(URI uri, Map<String, Object> parts) {
        String boundary = "----refldmseg" + System.nanoTime();
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        parts.forEach((name, value) -> {
            List<?> values = value instanceof List<?> l ? l : List.of(value);
            for (Object v : values) {
                body.writeBytes(("--" + boundary + "\r\n").getBytes(StandardCharsets.UTF_8));
                if (v instanceof byte[] b) {
                    body.writeBytes(("Content-Disposition: form-data; name=\"" + name + "\"; filename=\"" + name + ".png\"\r\n"
                            + "Content-Type: application/octet-stream\r\n\r\n").getBytes(StandardCharsets.UTF_8));
                    body.writeBytes(b);
                } else {
                    body.writeBytes(("Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + v).getBytes(StandardCharsets.UTF_8));
                }
                body.writeBytes("\r\n".getBytes(StandardCharsets.UTF_8));
            }
        });
        body.writeBytes(("--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return HttpRequest.newBuilder(uri).header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body.toByteArray()));
    }

    static Map<String, Object> parts(byte[] q) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("query", q);
        p.put("support", support);
        p.put("support_mask", supportMask);
        return p;
    }

    /** -n through the server: concurrent requests with their own seeds and steps share batches and match single runs. */
    @Test
    void denoisingRequestsThroughTheServer() throws Exception {
        try (RefLdmSeg n = RefLdmSeg.load(new RefLdmSeg.Checkpoints(Fixtures.file("unet8_diffusers.safetensors"), Fixtures.file("vae_diffusers.safetensors"),
                Fixtures.file("alphaclip_visual.safetensors")), new CpuBackend(), s -> { }).closingBackend();
             SegmentServer server = SegmentServer.start(new Segmenter(n, new Segmenter.Config(16, null, 1 << 20, 4, Duration.ofMillis(50))),
                     new SegmentServer.Settings("127.0.0.1", 0, 8 << 20, Duration.ofSeconds(120)))) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/segment");
            HttpClient http = HttpClient.newHttpClient();
            List<CompletableFuture<HttpResponse<byte[]>>> sent = new ArrayList<>();
            for (int seed = 1; seed <= 4; seed++) {
                Map<String, Object> p = parts(query);
                p.put("steps", "2");
                p.put("seed", String.valueOf(seed));
                sent.add(http.sendAsync(multipart(uri, p).build(), HttpResponse.BodyHandlers.ofByteArray()));
            }
            for (int seed = 1; seed <= 4; seed++) {
                HttpResponse<byte[]> r = sent.get(seed - 1).get();
                assertEquals(200, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
                Result alone = n.segment(request(query).query(), request(query).supports(), Options.defaults().withSteps(2).withSeed(seed));
                byte[] want = alone.mask().clone();
                for (int i = 0; i < want.length; i++) want[i] = (byte) (want[i] != 0 ? 255 : 0); // the PNG's object value
                assertArrayEquals(want, ImageFiles.readLabels(r.body(), "response").labels(), "seed " + seed + ": the server's -n mask is a single run's");
            }
        }
    }

    /** A 'tta' field: the server answers the mask of the request's averaged copies; with 'support_views' of the request with its supports' views. */
    @Test
    void testTimeAugmentationThroughTheServer() throws Exception {
        try (SegmentServer server = SegmentServer.start(new Segmenter(seg, new Segmenter.Config(16, null, 1 << 20)),
                new SegmentServer.Settings("127.0.0.1", 0, 8 << 20, Duration.ofSeconds(120)))) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/segment");
            Map<String, Object> p = parts(query);
            p.put("tta", "4");
            HttpResponse<byte[]> r = HttpClient.newHttpClient().send(multipart(uri, p).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
            byte[] want = io.refldmseg.pipeline.Augmentation.segment(seg, request(query), 4).mask().clone();
            for (int i = 0; i < want.length; i++) want[i] = (byte) (want[i] != 0 ? 255 : 0);
            assertArrayEquals(want, ImageFiles.readLabels(r.body(), "response").labels());
            p.put("support_views", "8"); // and each support as eight views of it
            r = HttpClient.newHttpClient().send(multipart(uri, p).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
            want = io.refldmseg.pipeline.Augmentation.segment(seg, io.refldmseg.pipeline.Augmentation.withSupportViews(request(query), 8, seg.tokenGrid()), 4).mask().clone();
            for (int i = 0; i < want.length; i++) want[i] = (byte) (want[i] != 0 ? 255 : 0);
            assertArrayEquals(want, ImageFiles.readLabels(r.body(), "response").labels());
        }
    }

    @Test
    void concurrentClientsGetTheMasksTheCliWrites() throws Exception {
        // the references: the segment command's own output files
        Map<String, byte[]> queries = Map.of("query", query, "support", support);
        Map<String, LabelMap> expected = new LinkedHashMap<>();
        for (var e : queries.entrySet()) {
            Path out = dir.resolve("cli_" + e.getKey() + ".png");
            int code = Main.run(new java.io.PrintWriter(new java.io.StringWriter()), "segment", "--unet", Fixtures.file("unet_diffusers.safetensors").toString(),
                    "--vae", Fixtures.file("vae_diffusers.safetensors").toString(), "--clip", Fixtures.file("alphaclip_visual.safetensors").toString(),
                    "--query", SAMPLES.resolve(e.getKey() + ".png").toString(), "--support", SAMPLES.resolve("support.png").toString(),
                    "--support-mask", SAMPLES.resolve("support_mask.png").toString(), "--out", out.toString());
            assertEquals(0, code);
            expected.put(e.getKey(), ImageFiles.readLabels(out));
        }
        // dynamic batching on: concurrent requests share batches, and every mask is still the CLI's
        try (SegmentServer server = SegmentServer.start(new Segmenter(seg, new Segmenter.Config(64, null, 1 << 20, 4, Duration.ofMillis(20))),
                new SegmentServer.Settings("127.0.0.1", 0, 8 << 20, Duration.ofSeconds(120)))) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/segment");
            HttpClient http = HttpClient.newHttpClient();
            int clients = 16, each = Integer.getInteger("refldmseg.serverRequests", 4); // the 20 per client: -Drefldmseg.serverRequests=20
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            List<Future<List<String>>> runs = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                int client = c;
                runs.add(pool.submit(() -> {
                    List<String> problems = new ArrayList<>();
                    for (int i = 0; i < each; i++) {
                        String which = (client + i) % 2 == 0 ? "query" : "support";
                        HttpResponse<byte[]> r = http.send(multipart(uri, parts(queries.get(which))).build(), HttpResponse.BodyHandlers.ofByteArray());
                        if (r.statusCode() != 200) {
                            problems.add(which + ": " + r.statusCode() + " " + new String(r.body(), StandardCharsets.UTF_8));
                            continue;
                        }
                        LabelMap got = ImageFiles.readLabels(r.body(), "response");
                        if (!java.util.Arrays.equals(expected.get(which).labels(), got.labels())) problems.add(which + ": mask differs from the CLI's");
                    }
                    return problems;
                }));
            }
            List<String> problems = new ArrayList<>();
            for (var f : runs) problems.addAll(f.get());
            pool.shutdown();
            assertEquals(List.of(), problems);
            String metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(metrics.contains("refldmseg_requests_total{outcome=\"ok\"} " + clients * each), metrics);
            assertTrue(metrics.contains("refldmseg_prompt_cache_total{result=\"hit\"} " + (clients * each - 1)), "one support: one miss, then hits\n" + metrics);
            long[] sizes = server.segmenter().stats().batchSizeCounts();
            long requests = 0, batched = 0;
            for (int size = 1; size < sizes.length; size++) {
                requests += size * sizes[size];
                if (size > 1) batched += size * sizes[size];
            }
            assertEquals(clients * each, requests, "every request ran in exactly one batch\n" + metrics);
            assertTrue(batched > 0, "16 concurrent clients: some requests shared a batch\n" + metrics);
        }
    }

    @Test
    void badRequestsOverloadAndOversizeGetTheirCodesAndTheServerKeepsServing() throws Exception {
        try (SegmentServer server = SegmentServer.start(new Segmenter(seg, new Segmenter.Config(1, null, 0)),
                new SegmentServer.Settings("127.0.0.1", 0, 2 << 20, Duration.ofSeconds(120)))) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/segment");
            HttpClient http = HttpClient.newHttpClient();
            Map<String, Object> noQuery = parts(query);
            noQuery.remove("query");
            assertStatus(http, multipart(uri, noQuery), 400, "'query'");
            Map<String, Object> text = parts("hello".getBytes(StandardCharsets.UTF_8));
            assertStatus(http, multipart(uri, text), 400, "field 'query': not a readable image");
            Map<String, Object> unknown = parts(query);
            unknown.put("temperature", "3");
            assertStatus(http, multipart(uri, unknown), 400, "unknown field 'temperature'");
            Map<String, Object> nan = parts(query);
            nan.put("guidance", "NaN");
            assertStatus(http, multipart(uri, nan), 400, "guidance");
            Map<String, Object> steps = parts(query);
            steps.put("steps", "100000");
            assertStatus(http, multipart(uri, steps), 400, "steps");
            Map<String, Object> tta = parts(query);
            tta.put("tta", "3");
            assertStatus(http, multipart(uri, tta), 400, "field 'tta' must be 1, 2, 4 or 8");
            Map<String, Object> views = parts(query);
            views.put("support_views", "12");
            assertStatus(http, multipart(uri, views), 400, "field 'support_views' must be 1, 2, 4, 8, 16 or 32");
            assertStatus(http, multipart(uri, parts(new byte[3 << 20])), 413, "limit");
            assertStatus(http, HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.ofString("x")), 400, "multipart");
            // overload: a queue of one, many at once: some 503 with Retry-After, the rest 200
            List<CompletableFuture<HttpResponse<byte[]>>> burst = new ArrayList<>();
            for (int i = 0; i < 8; i++) burst.add(http.sendAsync(multipart(uri, parts(query)).build(), HttpResponse.BodyHandlers.ofByteArray()));
            int ok = 0, overloaded = 0;
            for (var f : burst) {
                HttpResponse<byte[]> r = f.get();
                if (r.statusCode() == 200) ok++;
                else {
                    assertEquals(503, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
                    assertEquals("1", r.headers().firstValue("Retry-After").orElse(null));
                    overloaded++;
                }
            }
            assertTrue(ok >= 1 && overloaded >= 1, ok + " ok, " + overloaded + " overloaded");
            HttpResponse<String> json = http.send(multipart(uri, parts(query)).header("Accept", "application/json").build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, json.statusCode(), json.body());
            assertTrue(json.body().contains("\"mask_png_base64\"") && json.body().contains("\"queue_wait_ms\""), json.body());
            HttpResponse<String> health = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/healthz")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode());
            assertTrue(health.body().contains("\"workers\":1"), health.body());
        }
    }

    static void assertStatus(HttpClient http, HttpRequest.Builder req, int status, String fragment) throws Exception {
        HttpResponse<String> r = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.body().contains(fragment), "'" + fragment + "' in " + r.body());
    }

    /** Resident set size of this JVM in kB, from /proc (0 where there is none). */
    static long rssKb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }

    /**
     * Many requests from 4 clients through one server: 0 errors, RSS flat after warm-up, no thread
     * leak. CI runs 60 (-Drefldmseg.soak=N for the long run, with a fixed heap so that RSS means
     * something: -Dtest.heap="-Xms3g -Xmx3g -XX:+AlwaysPreTouch"; the figures go to stderr).
     */
    @Test
    void soak() throws Exception {
        int n = Integer.getInteger("refldmseg.soak", 60), warm = Math.min(100, n / 4);
        int threadsBefore = Thread.activeCount();
        long rssWarm = 0, rssMax = 0, t0 = System.nanoTime();
        int threadsWarm = 0, threadsMax = 0;
        try (SegmentServer server = SegmentServer.start(new Segmenter(seg, new Segmenter.Config(64, null, 1 << 20)),
                new SegmentServer.Settings("127.0.0.1", 0, 8 << 20, Duration.ofSeconds(120)));
             HttpClient http = HttpClient.newHttpClient()) { // closed before the server: its threads end too
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/segment");
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                java.util.concurrent.atomic.AtomicInteger errors = new java.util.concurrent.atomic.AtomicInteger(), sent = new java.util.concurrent.atomic.AtomicInteger();
                List<Future<?>> clients = new ArrayList<>();
                for (int c = 0; c < 4; c++)
                    clients.add(pool.submit(() -> {
                        while (sent.getAndIncrement() < n) {
                            try {
                                HttpResponse<byte[]> r = http.send(multipart(uri, parts(query)).build(), HttpResponse.BodyHandlers.ofByteArray());
                                if (r.statusCode() != 200) errors.incrementAndGet();
                            } catch (IOException | InterruptedException e) {
                                errors.incrementAndGet();
                            }
                        }
                        return null;
                    }));
                while (clients.stream().anyMatch(f -> !f.isDone())) {
                    Thread.sleep(200);
                    long rss = rssKb();
                    if (rssWarm == 0 && sent.get() >= warm) {
                        rssWarm = rss;
                        threadsWarm = Thread.activeCount();
                    }
                    if (rssWarm > 0) {
                        rssMax = Math.max(rssMax, rss);
                        threadsMax = Math.max(threadsMax, Thread.activeCount());
                    }
                }
                for (var f : clients) f.get();
                assertEquals(0, errors.get(), "errors");
            } finally {
                pool.shutdown();
                assertTrue(pool.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS));
            }
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        Thread.sleep(500);
        System.err.printf("[soak] %d requests in %.1f s (%.1f/s), RSS after %d: %d kB, max after: %d kB (%+.1f%%), threads before %d, after %d requests %d, most after that %d, after closing %d%n",
                n, secs, n / secs, warm, rssWarm, rssMax, rssWarm > 0 ? 100.0 * (rssMax - rssWarm) / rssWarm : 0, threadsBefore, warm, threadsWarm, threadsMax, Thread.activeCount());
        if (n >= 2000 && rssWarm > 0) assertTrue(rssMax <= rssWarm * 1.05, "RSS growth under 5% after warm-up");
        assertTrue(threadsMax <= threadsWarm + 2, "no thread leak under load: " + threadsWarm + " after warm-up, up to " + threadsMax);
        assertTrue(Thread.activeCount() <= threadsBefore + 2, "server, client and pool threads end with them: " + threadsBefore + " -> " + Thread.activeCount());
    }

    @Test
    void theSegmenterKeepsItsPromises() throws Exception {
        Result direct = seg.segment(request(query).query(), request(query).supports(), Options.defaults());
        try (Segmenter s = new Segmenter(seg, new Segmenter.Config(16, null, 1 << 20))) {
            Segmenter.Done first = s.submit(request(query)).get(), second = s.submit(request(query)).get();
            assertArrayEquals(direct.mask(), first.result().mask());
            assertArrayEquals(direct.logits(), second.result().logits(), 0f, "a cached instruction gives the same bits");
            assertFalse(first.promptCached());
            assertTrue(second.promptCached());
            // a deadline that has passed before the request starts, and a cancelled request behind a running one
            CompletableFuture<Segmenter.Done> running = s.submit(request(query));
            CompletableFuture<Segmenter.Done> late = s.submit(request(query), Duration.ZERO);
            CompletableFuture<Segmenter.Done> cancelled = s.submit(request(query));
            cancelled.cancel(false);
            running.get();
            ExecutionException e = assertThrows(ExecutionException.class, late::get);
            assertInstanceOf(TimeoutException.class, e.getCause());
            assertTrue(cancelled.isCancelled());
        }
        // close() runs everything queued before it returns
        Segmenter s = new Segmenter(seg, new Segmenter.Config(8, null, 1 << 20));
        List<CompletableFuture<Segmenter.Done>> queued = new ArrayList<>();
        for (int i = 0; i < 5; i++) queued.add(s.submit(request(i % 2 == 0 ? query : support)));
        s.close();
        for (var f : queued) assertTrue(f.isDone() && !f.isCompletedExceptionally(), "finished, not lost");
        assertThrows(java.util.concurrent.RejectedExecutionException.class, () -> s.submit(request(query)));
        // batching: 1-shot and 2-shot requests queued together; the 2-shot ones wait for their own batch,
        // close() still runs all, and every result is the one a single run gives
        Request twoShot = new Request(request(support).query(), List.of(request(query).supports().getFirst(), request(query).supports().getFirst()));
        Result twoShotAlone = seg.segment(twoShot.query(), twoShot.supports(), Options.defaults());
        Result supportAlone = seg.segment(request(support).query(), request(support).supports(), Options.defaults());
        Segmenter batching = new Segmenter(seg, new Segmenter.Config(16, null, 1 << 20, 3, Duration.ofMillis(200)));
        List<CompletableFuture<Segmenter.Done>> mixed = new ArrayList<>();
        List<Result> want = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            boolean two = i % 3 == 1;
            mixed.add(batching.submit(two ? twoShot : request(i % 2 == 0 ? query : support)));
            want.add(two ? twoShotAlone : i % 2 == 0 ? direct : supportAlone);
        }
        batching.close();
        for (int i = 0; i < mixed.size(); i++)
            assertArrayEquals(want.get(i).logits(), mixed.get(i).get().result().logits(), 0f, "request " + i + " through batches equals a single run");
        long[] sizes = batching.stats().batchSizeCounts();
        long runs = 0;
        for (int size = 1; size < sizes.length; size++) runs += size * sizes[size];
        assertEquals(7, runs, "each request in one batch: " + java.util.Arrays.toString(sizes));
        assertTrue(sizes[2] + sizes[3] > 0, "some requests shared a batch: " + java.util.Arrays.toString(sizes));
        // a full queue refuses at once
        try (Segmenter small = new Segmenter(seg, new Segmenter.Config(1, null, 0))) {
            List<CompletableFuture<Segmenter.Done>> accepted = new ArrayList<>();
            boolean refused = false;
            for (int i = 0; i < 6 && !refused; i++) {
                try {
                    accepted.add(small.submit(request(query)));
                } catch (Segmenter.Overloaded o) {
                    refused = true;
                }
            }
            assertTrue(refused, "a queue of one overflows within six quick submits");
            for (var f : accepted) f.get();
            assertTrue(small.stats().rejected() >= 1);
        }
    }

    @Test
    void batchSegmentsAManifestSkipsFailuresAndResumes() throws IOException {
        Path m = dir.resolve("batch/episodes.jsonl"), out = dir.resolve("batch/out");
        Files.createDirectories(m.getParent());
        for (String f : List.of("query.png", "support.png", "support_mask.png")) Files.copy(SAMPLES.resolve(f), m.getParent().resolve(f));
        Files.writeString(m, """
                {"query": "query.png", "supports": ["support.png"], "support_masks": ["support_mask.png"]}
                {"query": "missing.png", "supports": ["support.png"], "support_masks": ["support_mask.png"]}
                {"query": "support.png", "supports": ["support.png"], "support_masks": ["support_mask.png"]}
                """);
        String[] args = {"batch", "--unet", Fixtures.file("unet_diffusers.safetensors").toString(), "--vae", Fixtures.file("vae_diffusers.safetensors").toString(),
                "--clip", Fixtures.file("alphaclip_visual.safetensors").toString(), "--manifest", m.toString(), "--out-dir", out.toString(), "--overlays"};
        java.io.StringWriter err = new java.io.StringWriter();
        assertEquals(3, Main.run(new java.io.PrintWriter(err, true), args), "one item failed: exit 3");
        assertTrue(Files.exists(out.resolve("query_mask.png")) && Files.exists(out.resolve("support_mask.png"))
                && Files.exists(out.resolve("query_overlay.png")));
        assertFalse(Files.exists(out.resolve("missing_mask.png")));
        long before = Files.getLastModifiedTime(out.resolve("query_mask.png")).toMillis();
        Files.copy(SAMPLES.resolve("query.png"), m.getParent().resolve("missing.png"));
        assertEquals(0, Main.run(new java.io.PrintWriter(new java.io.StringWriter(), true), args), "the rerun does the one that failed");
        assertEquals(before, Files.getLastModifiedTime(out.resolve("query_mask.png")).toMillis(), "done items are skipped");
        assertTrue(Files.exists(out.resolve("missing_mask.png")));

        // two engines of one thread each write the same masks
        Path two = dir.resolve("batch/out-two-workers");
        String[] workers = java.util.stream.Stream.concat(java.util.Arrays.stream(args).map(x -> x.equals(out.toString()) ? two.toString() : x),
                java.util.stream.Stream.of("--workers", "2", "--threads", "2")).toArray(String[]::new);
        assertEquals(0, Main.run(new java.io.PrintWriter(new java.io.StringWriter(), true), workers));
        for (String f : List.of("query_mask.png", "missing_mask.png", "support_mask.png"))
            assertArrayEquals(Files.readAllBytes(out.resolve(f)), Files.readAllBytes(two.resolve(f)), f);
        java.io.StringWriter tooMany = new java.io.StringWriter();
        workers[workers.length - 3] = "3";
        for (int i = 0; i < workers.length; i++) if (workers[i].equals(two.toString())) workers[i] = dir.resolve("batch/out-three").toString();
        assertEquals(2, Main.run(new java.io.PrintWriter(tooMany, true), workers));
        assertTrue(tooMany.toString().contains("--workers 3 needs at least as many --threads, got 2"), tooMany.toString());
        java.io.StringWriter noThreads = new java.io.StringWriter();
        workers[workers.length - 1] = "0";
        assertEquals(2, Main.run(new java.io.PrintWriter(noThreads, true), workers));
        assertTrue(noThreads.toString().contains("--threads must be in 1..4096, got 0"), noThreads.toString());

        // --tta and --support-views through the service write what segment writes with them
        batchEqualsSegment(args, out, m, "tta", "--tta", "2");
        batchEqualsSegment(args, out, m, "views", "--support-views", "4");
    }

    /** batch with {@code args} (its --out-dir {@code out} replaced) plus {@code option value} writes the mask segment writes with them. */
    private void batchEqualsSegment(String[] args, Path out, Path m, String name, String option, String value) throws IOException {
        Path batchOut = dir.resolve("batch/out-" + name), single = dir.resolve("batch/segment-" + name + ".png");
        String[] batch = java.util.stream.Stream.concat(java.util.Arrays.stream(args).map(x -> x.equals(out.toString()) ? batchOut.toString() : x),
                java.util.stream.Stream.of(option, value)).toArray(String[]::new);
        assertEquals(0, Main.run(new java.io.PrintWriter(new java.io.StringWriter(), true), batch));
        assertEquals(0, Main.run(new java.io.PrintWriter(new java.io.StringWriter(), true), "segment", args[1], args[2], args[3], args[4], args[5], args[6],
                "--query", m.getParent().resolve("query.png").toString(), "--support", m.getParent().resolve("support.png").toString(),
                "--support-mask", m.getParent().resolve("support_mask.png").toString(), option, value, "--out", single.toString()));
        assertArrayEquals(Files.readAllBytes(single), Files.readAllBytes(batchOut.resolve("query_mask.png")), "batch vs segment, " + option + " " + value);
    }
}
