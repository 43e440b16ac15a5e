package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Golden;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.TensorFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static io.refldmseg.pipeline.PipelineFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** Multi-category, video and any-size inputs on cases whose answer is known. */
class PipelineBehaviourTest {
    static RefLdmSeg seg;
    static RgbImage query;
    static List<Support> supports;

    @BeforeAll
    static void setUp() {
        seg = open(tinyF());
        try (TensorFile f = TensorFile.open(Fixtures.file("pipe_f2.safetensors"))) {
            query = image(f.tensor("query_u8_hwc"), 0);
            supports = supports(f);
        }
    }

    @AfterAll
    static void tearDown() {
        seg.close();
    }

    @Test
    void categoryProbabilitiesFollowThePaperAndNeverOverflow() {
        float[][] margins = {{2f, -1f, 5000f, -5000f, 0f}, {1f, -3f, 4999f, -6000f, 0f}};
        byte[] labels = new byte[5];
        float[][] p = PseudoMask.categories(margins, labels);
        assertArrayEquals(new byte[]{1, 0, 1, 0, 0}, labels, "argmax with background at 0 and ties to the lower label");
        for (int px = 0; px < 5; px++) {
            double sum = 0;
            for (float[] row : p) {
                assertTrue(Float.isFinite(row[px]), "finite");
                sum += row[px];
            }
            assertEquals(1.0, sum, 1e-6);
        }
        double e2 = Math.exp(2), e1 = Math.exp(1);
        assertEquals(e2 / (1 + e2 + e1), p[1][0], 1e-6);
        assertEquals(e1 / (1 + e2 + e1), p[2][0], 1e-6);
        assertEquals(1 / (1 + e2 + e1), p[0][0], 1e-6);
        assertEquals(1f / (1 + Math.exp(-1)), p[1][2], 1e-6, "5000 vs 4999: exp never evaluated at 5000");
    }

    @Test
    void categoriesAgreeWithSingleRuns() {
        Options o = Options.defaults();
        RefLdmSeg.CategoryResult one = seg.segmentCategories(query, List.of(supports), o);
        Result single = seg.segment(query, supports, o);
        for (int i = 0; i < single.mask().length; i++) assertEquals(single.mask()[i], one.labels()[i], "one category = its mask");
        // the same prompt twice: equal probabilities, every object pixel goes to the lower label
        RefLdmSeg.CategoryResult twice = seg.segmentCategories(query, List.of(supports, supports), o);
        assertArrayEquals(twice.probabilities()[1], twice.probabilities()[2]);
        for (int i = 0; i < single.mask().length; i++) assertEquals(single.mask()[i], twice.labels()[i]);
        // two different categories: the label is the argmax of the per-category margins
        RefLdmSeg.CategoryResult two = seg.segmentCategories(query, List.of(supports.subList(0, 1), supports.subList(1, 2)), o);
        Result a = seg.segment(query, supports.subList(0, 1), o), b = seg.segment(query, supports.subList(1, 2), o);
        int pixels = a.mask().length;
        for (int i = 0; i < pixels; i++) {
            float ma = a.logits()[pixels + i] - a.logits()[i], mb = b.logits()[pixels + i] - b.logits()[i];
            int want = Math.max(ma, mb) <= 0 ? 0 : ma >= mb ? 1 : 2;
            assertEquals(want, two.labels()[i], "pixel " + i);
        }
    }

    @Test
    void videoUsesTheFirstFrameAsPromptForEveryLaterFrame() {
        Support first = supports.getFirst();
        RgbImage f2 = query, f3 = supports.get(1).image();
        List<Result> r = seg.segmentVideo(List.of(first.image(), f2, f3), first.mask(), Options.defaults());
        assertEquals(2, r.size());
        assertArrayEquals(seg.segment(f2, List.of(first), Options.defaults()).mask(), r.get(0).mask());
        assertArrayEquals(seg.segment(f3, List.of(first), Options.defaults()).mask(), r.get(1).mask());
        List<Result> viewed = seg.segmentVideo(List.of(first.image(), f2, f3), first.mask(), Options.defaults(), 4);
        Request four = Augmentation.withSupportViews(new Request(f3, List.of(first), Options.defaults()), 4, seg.tokenGrid());
        assertEquals(4, four.supports().size());
        assertArrayEquals(seg.segment(four).logits(), viewed.get(1).logits(), "with views the first frame's views are the prompt");
    }

    /** A 512x512 query made by doubling every pixel of a 256 query: same model input, logits resized back by 2. */
    @Test
    void anySizeQueryRoundTrip() {
        int w = query.width(), h = query.height();
        byte[] big = new byte[4 * w * h * 3];
        for (int y = 0; y < 2 * h; y++)
            for (int x = 0; x < 2 * w; x++)
                for (int c = 0; c < 3; c++) big[(y * 2 * w + x) * 3 + c] = query.rgb()[((y / 2) * w + x / 2) * 3 + c];
        Options o = Options.defaults().withKeepTensors(true);
        Result small = seg.segment(query, supports, o), large = seg.segment(new RgbImage(2 * w, 2 * h, big), supports, o);
        assertEquals(2 * w, large.width());
        assertEquals(4 * w * h, large.mask().length);
        assertArrayEquals(small.tensors().get("logits").data(), large.tensors().get("logits").data(), 0f,
                "bilinear halving of a doubled image is exact, so the model sees the same input");
        Backend be = seg.backend();
        float[] hwc = io.refldmseg.engine.Layouts.nchwToNhwc(small.logits(), 1, 3, h, w);
        float[] up = be.toHost(be.resizeBilinear(be.tensor(hwc, 1, h, w, 3), 2 * h, 2 * w));
        assertArrayEquals(PseudoMask.decide(up), large.mask(), "mask = channel compare of the bilinearly resized logits");

        // a non-square query: padded at the bottom, the crop keeps the image rows only
        byte[] wide = new byte[w * 160 * 3];
        System.arraycopy(query.rgb(), 0, wide, 0, wide.length);
        Result r = seg.segment(new RgbImage(w, 160, wide), supports, o);
        assertEquals(160, r.height());
        float[] padded = r.tensors().get("logits").data();
        float[] expect = new float[3 * 160 * w];
        for (int c = 0; c < 3; c++) System.arraycopy(padded, c * 256 * w, expect, c * 160 * w, 160 * w);
        Golden.assertClose("crop of the padded logits", expect, r.logits(), 0);
    }

    /** Giving each stage's memory back between stages changes no bit of the answer or of the kept intermediates, -f and -n. */
    @Test
    void compactingBetweenStagesGivesTheSameBits() {
        Options f = Options.defaults().withKeepTensors(true);
        try (RefLdmSeg compacting = open(tinyF()).compactingBetweenStages()) {
            assertSameAnswer(seg.segment(new Request(query, supports, f)), compacting.segment(new Request(query, supports, f)));
            RefLdmSeg.Prompt p = compacting.prompt(supports, f.ignoreLabel());
            assertSameAnswer(seg.segment(query, p, Options.defaults()), compacting.segment(query, p, Options.defaults()));
        }
        Options n = Options.defaults().withSteps(3).withKeepTensors(true);
        try (RefLdmSeg plain = open(tinyN()); RefLdmSeg compacting = open(tinyN()).compactingBetweenStages()) {
            assertSameAnswer(plain.segment(new Request(query, supports, n)), compacting.segment(new Request(query, supports, n)));
        }
    }

    private static void assertSameAnswer(Result want, Result got) {
        assertArrayEquals(want.mask(), got.mask());
        assertArrayEquals(want.logits(), got.logits());
        assertEquals(want.tensors().keySet(), got.tensors().keySet());
        want.tensors().forEach((name, t) -> assertArrayEquals(t.data(), got.tensors().get(name).data(), name));
    }

    /** Either guidance scale below 1 switches guidance off: one UNet row per step, its output used as is. */
    @Test
    void guidanceBelowOneRunsOneUnguidedRow() {
        try (RefLdmSeg n = open(tinyN())) {
            Options o = Options.defaults().withSteps(3).withScheduler(Options.SchedulerKind.DDIM).withKeepTensors(true);
            for (float[] g : new float[][]{{0.5f, 1.5f}, {7f, 0.9f}}) {
                var t = n.segment(new Request(query, supports, o.withGuidance(g[0], g[1]))).tensors();
                assertArrayEquals(new long[]{3, 1, 4, 32, 32}, t.get("step_unet_raw").shape());
                assertArrayEquals(t.get("step_unet_raw").data(), t.get("step_eps_guided").data(), "no mixing");
                assertNull(t.get("null_prompt"), "no null prompt evaluated");
            }
            var guided = n.segment(new Request(query, supports, o)).tensors();
            assertArrayEquals(new long[]{3, 3, 4, 32, 32}, guided.get("step_unet_raw").shape());
        }
    }

    @Test
    void badRequests() {
        assertThrows(IllegalArgumentException.class, () -> seg.segment(query, List.of(), Options.defaults()));
        assertThrows(IllegalArgumentException.class, () -> new Request(query, List.of()));
        assertThrows(IllegalArgumentException.class, () -> Options.defaults().withSteps(0));
        assertThrows(IllegalArgumentException.class, () -> new Support(query, new LabelMap(10, 10, new byte[100])));
    }
}
