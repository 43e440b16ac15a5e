package io.refldmseg.pipeline;

import io.refldmseg.engine.TestBackend;
import io.refldmseg.eval.SyntheticScenes;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** The square's eight symmetries on images, masks and logits, checked against formulas written out here, and a request run as copies. */
class AugmentationTest {
    /** A w x h map whose every pixel has its own label. */
    private static LabelMap numbered(int w, int h) {
        byte[] b = new byte[w * h];
        for (int i = 0; i < b.length; i++) b[i] = (byte) i;
        return new LabelMap(w, h, b);
    }

    @Test
    void theEightTransformsAreDistinctPermutationsThatMatchTheirFormulas() {
        int w = 5, h = 3;
        LabelMap m = numbered(w, h);
        Set<String> seen = new HashSet<>();
        for (int t = 0; t < 8; t++) {
            LabelMap out = Augmentation.apply(t, m);
            assertEquals(t % 2 == 0 ? w : h, out.width(), "transform " + t);
            assertEquals(t % 2 == 0 ? h : w, out.height(), "transform " + t);
            assertEquals(w * h, new HashSet<>(java.util.Arrays.asList(box(out.labels()))).size(), "transform " + t + " keeps every pixel once");
            assertTrue(seen.add(out.width() + ":" + java.util.Arrays.toString(out.labels())), "transform " + t + " differs from the others");
        }
        LabelMap quarter = Augmentation.apply(1, m), half = Augmentation.apply(2, m), mirror = Augmentation.apply(4, m);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                assertEquals(m.at(h - 1 - y, w - 1 - x), half.at(y, x), "half turn at " + y + "," + x);
                assertEquals(m.at(y, w - 1 - x), mirror.at(y, x), "mirror at " + y + "," + x);
            }
        for (int y = 0; y < w; y++) // clockwise: the turned image's row y is the original's column y read bottom to top
            for (int x = 0; x < h; x++) assertEquals(m.at(h - 1 - x, y), quarter.at(y, x), "quarter turn at " + y + "," + x);
        LabelMap four = m;
        for (int i = 0; i < 4; i++) four = Augmentation.apply(1, four);
        assertArrayEquals(m.labels(), four.labels(), "four quarter turns are none");
        RgbImage rgb = new RgbImage(2, 1, new byte[]{1, 2, 3, 4, 5, 6});
        assertArrayEquals(new byte[]{4, 5, 6, 1, 2, 3}, Augmentation.apply(4, rgb).rgb(), "a pixel's three channels move together");
        assertThrows(IllegalArgumentException.class, () -> Augmentation.transforms(3));
    }

    private static Byte[] box(byte[] b) {
        Byte[] out = new Byte[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i];
        return out;
    }

    /** Copies whose logits are the query's own logits turned by each copy's transform combine back to exactly those logits. */
    @Test
    void combiningTurnsEachCopysLogitsBackOntoTheQuery() {
        int w = 6, h = 4, px = w * h;
        float[] logits = new float[3 * px];
        for (int i = 0; i < logits.length; i++) logits[i] = (i * 37 % 23) - 11; // small integers: sums and halvings stay exact
        byte[] expected = new byte[px];
        for (int i = 0; i < px; i++) expected[i] = (byte) (logits[px + i] > logits[i] ? 1 : 0);
        for (int n : Augmentation.COUNTS) {
            List<Result> copies = new ArrayList<>();
            for (int t : Augmentation.transforms(n)) {
                float[] turned = new float[3 * px];
                for (int c = 0; c < 3; c++) {
                    byte[] channel = new byte[px];
                    for (int i = 0; i < px; i++) channel[i] = (byte) logits[c * px + i];
                    LabelMap moved = Augmentation.apply(t, new LabelMap(w, h, channel));
                    for (int i = 0; i < px; i++) turned[c * px + i] = moved.labels()[i];
                }
                byte[] mask = new byte[px];
                for (int i = 0; i < px; i++) mask[i] = (byte) (turned[px + i] > turned[i] ? 1 : 0);
                copies.add(new Result(Augmentation.width(t, w, h), Augmentation.width(t, h, w), mask, turned, Map.of(),
                        new Result.Timings(1, 2, 3, 4, 10)));
            }
            Result r = Augmentation.combine(w, h, copies);
            assertArrayEquals(logits, r.logits(), n + " copies");
            assertArrayEquals(expected, r.mask(), n + " copies");
            assertEquals(n == 1 ? 10 : 10L * n, r.timings().totalMillis());
        }
    }

    /** Views are each support in the order of the transforms, then the same of its copies shifted by half a token cell, border mirrored. */
    @Test
    void supportViewsAreEachSupportTurnedThenShiftedAgainstTheTokenGrid() {
        int w = 24, h = 16, grid = 4; // half a cell: 24 / 8 = 3 across, 16 / 8 = 2 down
        LabelMap m = numbered(w, h);
        byte[] rgb = new byte[3 * w * h];
        for (int i = 0; i < rgb.length; i++) rgb[i] = (byte) (i / 3 * 7 + i % 3);
        Support s = new Support(new RgbImage(w, h, rgb), m), other = new Support(new RgbImage(w, h, rgb.clone()), numbered(w, h));
        RgbImage query = new RgbImage(2, 2, new byte[12]);
        Request r = new Request(query, List.of(s, other), Options.defaults());
        assertSame(r, Augmentation.withSupportViews(r, 1, grid));
        for (int n : Augmentation.VIEW_COUNTS) {
            List<Support> views = Augmentation.withSupportViews(r, n, grid).supports();
            assertEquals(2 * n, views.size(), n + " views of two supports");
            assertSame(s, views.getFirst(), "the first view is the support itself");
            assertSame(other, views.get(n), "the second support's views follow the first's");
            int[] ts = Augmentation.transforms(Math.min(n, 8));
            for (int i = 0; i < ts.length; i++) {
                assertArrayEquals(Augmentation.apply(ts[i], m).labels(), views.get(i).mask().labels(), n + " views: view " + i);
                assertArrayEquals(Augmentation.apply(ts[i], s.image()).rgb(), views.get(i).image().rgb(), n + " views: view " + i);
            }
        }
        List<Support> v32 = Augmentation.withSupportViews(r, 32, grid).supports();
        int[][] shifts = {{0, 3}, {2, 0}, {2, 3}}; // {down, across}, in the order of the 32 views
        for (int k = 0; k < 3; k++) {
            int dy = shifts[k][0], dx = shifts[k][1];
            LabelMap moved = v32.get(8 * (k + 1)).mask();
            RgbImage movedRgb = v32.get(8 * (k + 1)).image();
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int sy = y >= dy ? y - dy : dy - y, sx = x >= dx ? x - dx : dx - x; // content moved down / right, the vacated rows and columns mirrored
                    assertEquals(m.at(sy, sx), moved.at(y, x), "shift " + dy + "," + dx + " at " + y + "," + x);
                    for (int c = 0; c < 3; c++) assertEquals(rgb[(sy * w + sx) * 3 + c], movedRgb.rgb()[(y * w + x) * 3 + c], "rgb at " + y + "," + x);
                }
            assertArrayEquals(Augmentation.apply(5, moved).labels(), v32.get(8 * (k + 1) + 5).mask().labels(), "a shifted copy's views are its transforms");
        }
        assertArrayEquals(Augmentation.withSupportViews(r, 16, grid).supports().get(8).mask().labels(), v32.get(24).mask().labels(),
                "16 views shift both ways");
        assertThrows(IllegalArgumentException.class, () -> Augmentation.withSupportViews(r, 3, grid));
        // a large support: its first view is itself, the others come from it reduced by a whole factor to VIEW_SIDE a side or under
        int bw = 3 * Augmentation.VIEW_SIDE + 5, bh = Augmentation.VIEW_SIDE;
        byte[] big = new byte[3 * bw * bh], bigMask = new byte[bw * bh];
        for (int y = 0; y < bh; y++)
            for (int x = 0; x < bw; x++) {
                for (int c = 0; c < 3; c++) big[(y * bw + x) * 3 + c] = (byte) (x % 4 == 0 ? 200 : 100); // block means of 4: (200 + 3 * 100) / 4 = 125
                bigMask[y * bw + x] = (byte) (x >= bw / 2 ? 1 : 0);
            }
        Support large = new Support(new RgbImage(bw, bh, big), new LabelMap(bw, bh, bigMask));
        List<Support> largeViews = Augmentation.withSupportViews(new Request(query, List.of(large), Options.defaults()), 8, grid).supports();
        assertSame(large, largeViews.getFirst());
        Support half = largeViews.get(1);
        assertEquals(Augmentation.VIEW_SIDE / 4, half.image().width(), "a quarter turn of the reduced support: its height");
        assertEquals((3 * Augmentation.VIEW_SIDE + 5) / 4, half.image().height());
        for (byte b : half.image().rgb()) assertEquals(125, b & 0xff);
        Support reduced = Augmentation.reduced(large);
        for (int y = 0; y < reduced.mask().height(); y++)
            for (int x = 0; x < reduced.mask().width(); x++) assertEquals(x * 4 + 2 >= bw / 2 ? 1 : 0, reduced.mask().at(y, x), "mask at the block centre");
        assertThrows(IllegalArgumentException.class, () -> Augmentation.withSupportViews(r, 2, 0));
    }

    /** On the bundled model, two copies are the request and its half turn, the latter's logits turned back by hand, averaged. */
    @Test
    void aRequestRunAsTwoCopiesAveragesItsHalfTurn() {
        try (RefLdmSeg seg = RefLdmSeg.load(BundledModel.checkpoints(), TestBackend.create(), s -> {
        }).closingBackend()) {
            SyntheticScenes.Scene query = SyntheticScenes.scene(2028, 0), support = SyntheticScenes.scene(2028, 1);
            int kind = 0;
            while (!support.contains(kind)) kind++;
            Request r = new Request(query.image(), List.of(new Support(support.image(), new LabelMap(256, 256, support.mask(kind)))), Options.defaults());
            Result plain = seg.segment(r), turned = seg.segment(Augmentation.apply(2, r)), both = Augmentation.segment(seg, r, 2);
            int n = 256, px = n * n;
            float[] average = new float[3 * px];
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < n; y++)
                    for (int x = 0; x < n; x++)
                        average[c * px + y * n + x] = (plain.logits()[c * px + y * n + x] + turned.logits()[c * px + (n - 1 - y) * n + (n - 1 - x)]) / 2;
            assertArrayEquals(average, both.logits());
            for (int i = 0; i < px; i++) assertEquals(average[px + i] > average[i] ? 1 : 0, both.mask()[i], "pixel " + i);
            assertThrows(IllegalArgumentException.class, () -> Augmentation.copies(new Request(r.query(), r.supports(),
                    Options.defaults().withNoise(new NoiseInputs(null, null, new float[4 * 32 * 32]))), 2));
        }
    }
}
