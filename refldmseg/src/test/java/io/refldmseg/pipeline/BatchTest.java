package io.refldmseg.pipeline;

import io.refldmseg.eval.SyntheticScenes;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.*;

/** A batch of mixed requests equals each request run alone, bit for bit (-f and -n, tiny random models). */
class BatchTest {
    /** Four requests: different queries (one not square), supports and seeds; two -n scheduler/guidance mixes. */
    private record Mixed(List<RgbImage> queries, List<RefLdmSeg.Prompt> prompts, List<Options> options) {
    }

    private static Mixed mixed(RefLdmSeg seg, List<Options> options) {
        List<RgbImage> queries = new ArrayList<>();
        List<RefLdmSeg.Prompt> prompts = new ArrayList<>();
        for (int i = 0; i < options.size(); i++) {
            SyntheticScenes.Scene q = SyntheticScenes.scene(77, i), s = SyntheticScenes.scene(78, i);
            RgbImage query = i == 2 ? crop(q.image(), 200, 150) : q.image();
            queries.add(query);
            prompts.add(seg.prompt(List.of(new Support(s.image(), new LabelMap(256, 256, s.mask(s.firstKind())))), -1));
        }
        return new Mixed(queries, prompts, options);
    }

    private static RgbImage crop(RgbImage img, int w, int h) {
        byte[] out = new byte[w * h * 3];
        for (int y = 0; y < h; y++) System.arraycopy(img.rgb(), y * img.width() * 3, out, y * w * 3, w * 3);
        return new RgbImage(w, h, out);
    }

    private static void assertBatchEqualsSingles(RefLdmSeg seg, Mixed m) {
        List<Result> batch = seg.segmentBatch(m.queries(), m.prompts(), m.options());
        assertEquals(m.queries().size(), batch.size());
        for (int i = 0; i < batch.size(); i++) {
            Result alone = seg.segment(m.queries().get(i), m.prompts().get(i), m.options().get(i));
            assertArrayEquals(alone.logits(), batch.get(i).logits(), "request " + i + ": logits of the batch vs alone");
            assertArrayEquals(alone.mask(), batch.get(i).mask(), "request " + i + ": mask");
            assertEquals(alone.width(), batch.get(i).width());
        }
    }

    @Test
    void fBatchOfFourEqualsFourSingleRuns() {
        try (RefLdmSeg seg = PipelineFixtures.open(PipelineFixtures.tinyF()).closingBackend()) {
            Options base = Options.defaults();
            List<Options> options = List.of(base, base.withSeed(5).withPosterior(Options.Posterior.SAMPLE), base.withMaskAlpha(0.3f), base.withSeed(9));
            assertBatchEqualsSingles(seg, mixed(seg, options));
        }
    }

    /**
     * Requests that repeat one instruction (the same support for a video or a dataset) share its
     * cross-attention keys and values in a batch: fewer operations than the same batch with every
     * instruction different, every result still the bits of its single run.
     */
    @Test
    void anFBatchRepeatingOneInstructionProjectsItOnce() {
        io.refldmseg.engine.ProfilingBackend be = new io.refldmseg.engine.ProfilingBackend(io.refldmseg.engine.TestBackend.create());
        try (RefLdmSeg seg = RefLdmSeg.load(PipelineFixtures.tinyF(), be, s -> {
        }).closingBackend()) {
            Options base = Options.defaults();
            List<Options> options = List.of(base, base.withSeed(5).withPosterior(Options.Posterior.SAMPLE), base.withMaskAlpha(0.3f), base.withSeed(9));
            Mixed different = mixed(seg, options);
            RefLdmSeg.Prompt one = different.prompts().get(1);
            // the same instruction made again (as the service's cache gives it: equal values, other tensors) and reused as it is
            RefLdmSeg.Prompt again = seg.prompt(List.of(new Support(SyntheticScenes.scene(78, 1).image(),
                    new LabelMap(256, 256, SyntheticScenes.scene(78, 1).mask(SyntheticScenes.scene(78, 1).firstKind())))), -1);
            Mixed repeated = new Mixed(different.queries(), List.of(one, again, one, one), options);
            be.reset();
            seg.segmentBatch(different.queries(), different.prompts(), options);
            long distinctFlops = be.flops();
            be.reset();
            seg.segmentBatch(repeated.queries(), repeated.prompts(), options);
            long repeatedFlops = be.flops();
            assertTrue(repeatedFlops < distinctFlops, "one instruction: " + repeatedFlops + " FLOPs, four: " + distinctFlops);
            assertBatchEqualsSingles(seg, repeated);
            assertBatchEqualsSingles(seg, new Mixed(different.queries(), List.of(one, different.prompts().get(0), one, different.prompts().get(2)), options));
        }
    }

    @Test
    void nBatchOfFourEqualsFourSingleRuns() {
        try (RefLdmSeg seg = PipelineFixtures.open(PipelineFixtures.tinyN()).closingBackend()) {
            Options base = Options.defaults().withSteps(3);
            List<Options> options = List.of(base.withSeed(1), base.withSeed(2).withGuidance(5f, 1.5f), base.withSeed(3).withGuidance(7f, 2f), base.withSeed(4));
            assertBatchEqualsSingles(seg, mixed(seg, options));
            Options ddim = Options.defaults().withSteps(2).withScheduler(Options.SchedulerKind.DDIM);
            assertBatchEqualsSingles(seg, mixed(seg, List.of(ddim, ddim.withSeed(8))));
        }
    }

    /** Three support sets from different scenes, of one, {@code secondShots} and one shots (the second with a band of label 255). */
    private static List<List<Support>> supportSets(int secondShots) {
        List<List<Support>> sets = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            List<Support> shots = new ArrayList<>();
            for (int shot = 0; shot < (i == 1 ? secondShots : 1); shot++) {
                SyntheticScenes.Scene s = SyntheticScenes.scene(79, 2 * i + shot);
                byte[] mask = s.mask(s.firstKind());
                if (i == 1) for (int p = 0; p < 256 * 40; p++) mask[p] = (byte) 255; // a band of "ignore" at the top
                shots.add(new Support(s.image(), new LabelMap(256, 256, mask)));
            }
            sets.add(shots);
        }
        return sets;
    }

    @Test
    void promptsOfSeveralRequestsInOneTowerBatchEqualEachAlone() {
        try (RefLdmSeg seg = PipelineFixtures.open(PipelineFixtures.tinyF()).closingBackend()) {
            List<List<Support>> sets = supportSets(2);
            List<Integer> ignore = List.of(-1, 255, -1);
            List<RefLdmSeg.Prompt> together = seg.prompts(sets, ignore);
            assertEquals(3, together.size());
            for (int i = 0; i < sets.size(); i++) {
                RefLdmSeg.Prompt alone = seg.prompt(sets.get(i), ignore.get(i)), got = together.get(i);
                assertEquals(alone.shots(), got.shots(), "request " + i + ": shots");
                assertArrayEquals(alone.tokens().shape(), got.tokens().shape(), "request " + i + ": token shape");
                assertArrayEquals(seg.backend().toHost(alone.tokens()), seg.backend().toHost(got.tokens()), "request " + i + ": tokens");
                assertArrayEquals(seg.backend().toHost(alone.keyMask()), seg.backend().toHost(got.keyMask()), "request " + i + ": key mask");
                assertArrayEquals(seg.backend().toHost(alone.softKeyMask()), seg.backend().toHost(got.softKeyMask()), "request " + i + ": soft key mask");
            }
            assertThrows(IllegalArgumentException.class, () -> seg.prompts(sets, List.of(-1)));
            assertEquals(List.of(), seg.prompts(List.of(), List.of()));
            IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> seg.prompts(List.of(sets.get(0), List.of()), List.of(-1, -1)));
            assertTrue(none.getMessage().contains("at least one support"), none.getMessage());
        }
    }

    /** Through the service: a batch of four with three distinct support sets (the repeated one from the cache when it is on) equals single runs. */
    @Test
    void aServedBatchWithDifferentSupportsEqualsSingleRuns() throws Exception {
        try (RefLdmSeg seg = PipelineFixtures.open(PipelineFixtures.tinyF()).closingBackend()) {
            List<List<Support>> sets = supportSets(1); // one shot each: requests of different shot counts do not share a batch
            List<Request> requests = new ArrayList<>();
            for (int i = 0; i < 4; i++) requests.add(new Request(SyntheticScenes.scene(80, i).image(), sets.get(i == 3 ? 0 : i)));
            List<Result> alone = requests.stream().map(r -> seg.segment(r.query(), r.supports(), r.options())).toList();
            for (long cache : new long[]{1 << 20, 0}) {
                Segmenter s = new Segmenter(seg, new Segmenter.Config(16, null, cache, 4, Duration.ofSeconds(5)));
                List<CompletableFuture<Segmenter.Done>> sent = requests.stream().map(s::submit).toList();
                s.close();
                for (int i = 0; i < requests.size(); i++)
                    assertArrayEquals(alone.get(i).logits(), sent.get(i).get().result().logits(), 0f, "cache " + cache + ", request " + i);
                Segmenter.Stats st = s.stats();
                assertEquals(1, st.batchSizeCounts()[4], "the four requests ran as one batch: " + java.util.Arrays.toString(st.batchSizeCounts()));
                assertEquals(0, st.batchFallbacks(), st.lastBatchFailure());
                assertEquals(cache > 0 ? 3 : 0, st.promptCacheMisses(), "three distinct support sets");
                assertEquals(cache > 0 ? 1 : 0, st.promptCacheHits(), "the repeated set comes from the cache");
                assertEquals(cache > 0, sent.get(3).get().promptCached());
            }
        }
    }

    /** Two engines of one model set, each its own worker on one thread: every result equals a single run, both engines work, close drains both. */
    @Test
    void twoWorkersServeEveryRequestAsASingleRunWould() throws Exception {
        List<List<Support>> sets = supportSets(1);
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < 12; i++) requests.add(new Request(SyntheticScenes.scene(81, i).image(), sets.get(i % 3), Options.defaults().withSeed(i)));
        List<Result> alone;
        try (RefLdmSeg seg = PipelineFixtures.open(PipelineFixtures.tinyF()).closingBackend()) {
            alone = requests.stream().map(r -> seg.segment(r.query(), r.supports(), r.options())).toList();
        }
        List<io.refldmseg.engine.ProfilingBackend> backends = new ArrayList<>();
        List<RefLdmSeg> engines = new ArrayList<>();
        for (int w = 0; w < 2; w++) {
            var be = new io.refldmseg.engine.ProfilingBackend(new io.refldmseg.engine.cpu.CpuBackend(1));
            backends.add(be);
            engines.add(RefLdmSeg.load(PipelineFixtures.tinyF(), be, line -> { }).closingBackend());
        }
        try {
            Segmenter s = new Segmenter(engines, new Segmenter.Config(16, null, 1 << 20, 2, Duration.ZERO));
            assertEquals(2, s.engines().size());
            List<CompletableFuture<Segmenter.Done>> sent = new ArrayList<>();
            Thread[] clients = new Thread[4];
            for (int c = 0; c < clients.length; c++) {
                int first = c;
                clients[c] = Thread.ofPlatform().start(() -> {
                    for (int i = first; i < requests.size(); i += clients.length) {
                        CompletableFuture<Segmenter.Done> f = s.submit(requests.get(i));
                        synchronized (sent) {
                            while (sent.size() <= i) sent.add(null);
                            sent.set(i, f);
                        }
                    }
                });
            }
            for (Thread t : clients) t.join();
            s.close(); // returns when both workers have run everything queued
            for (int i = 0; i < requests.size(); i++) {
                assertTrue(sent.get(i).isDone(), "request " + i + " done after close");
                assertArrayEquals(alone.get(i).logits(), sent.get(i).get().result().logits(), 0f, "request " + i);
                assertArrayEquals(alone.get(i).mask(), sent.get(i).get().result().mask(), "request " + i + ": mask");
            }
            assertEquals(12, s.stats().completed());
            for (int w = 0; w < 2; w++) assertTrue(backends.get(w).flops() > 0, "engine " + w + " ran requests");
            assertThrows(java.util.concurrent.RejectedExecutionException.class, () -> s.submit(requests.getFirst()));
        } finally {
            engines.forEach(RefLdmSeg::close);
        }
        assertThrows(IllegalArgumentException.class, () -> new Segmenter(List.of(), Segmenter.Config.defaults()));
    }

    @Test
    void requestsThatCannotShareABatchAreRefused() {
        try (RefLdmSeg seg = PipelineFixtures.open(PipelineFixtures.tinyN()).closingBackend()) {
            Options a = Options.defaults().withSteps(2);
            Mixed m = mixed(seg, List.of(a, a.withSteps(3)));
            assertFalse(seg.batchable(m.prompts().get(0), m.options().get(0), m.prompts().get(1), m.options().get(1)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> seg.segmentBatch(m.queries(), m.prompts(), m.options()));
            assertTrue(e.getMessage().contains("cannot share a batch"), e.getMessage());
        }
    }
}
