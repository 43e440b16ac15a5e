package io.refldmseg.pipeline;

import io.refldmseg.eval.SyntheticScenes;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

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
            int kind = 0;
            while (kind < 4 && !s.contains(kind)) kind++;
            prompts.add(seg.prompt(List.of(new Support(s.image(), new LabelMap(256, 256, s.mask(kind)))), -1));
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
