package io.refldmseg.eval;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The metrics on cases computed by hand. */
class MetricsTest {
    static byte[] mask(int w, int h, int x0, int y0, int x1, int y1) {
        byte[] m = new byte[w * h];
        for (int y = y0; y < y1; y++) for (int x = x0; x < x1; x++) m[y * w + x] = 1;
        return m;
    }

    @Test
    void overlapCountsAndTheEmptyCases() {
        byte[] pred = {1, 1, 0, 0}, truth = {1, 0, 1, 0};
        Metrics.Overlap o = Metrics.overlap(pred, truth, -1);
        assertEquals(1, o.intersection());
        assertEquals(3, o.union());
        assertEquals(1, o.bgIntersection());
        assertEquals(3, o.bgUnion());
        assertEquals(1.0 / 3, o.iou(), 1e-12);
        assertEquals(1.0, Metrics.overlap(new byte[4], new byte[4], -1).iou(), "empty prediction of an empty truth is right");
        assertEquals(0.0, Metrics.overlap(new byte[4], truth, -1).iou(), "empty prediction of an object");
        assertEquals(0.0, Metrics.overlap(pred, new byte[4], -1).iou(), "an object predicted on an empty truth");
    }

    @Test
    void theIgnoreLabelCountsForNothing() {
        byte[] pred = {1, 1, 1, 0}, truth = {1, (byte) 255, (byte) 255, 0};
        Metrics.Overlap o = Metrics.overlap(pred, truth, 255);
        assertEquals(1, o.intersection());
        assertEquals(1, o.union());
        assertEquals(1, o.bgIntersection());
        // without the ignore label 255 is an object label
        assertEquals(3, Metrics.overlap(pred, truth, -1).intersection());
    }

    @Test
    void classIoUAccumulatesOverEpisodesAndMiouAveragesClasses() {
        Metrics m = new Metrics();
        m.add("a", new byte[]{1, 1, 0, 0}, new byte[]{1, 0, 0, 0}, -1); // I 1, U 2
        m.add("a", new byte[]{1, 1, 1, 1}, new byte[]{1, 1, 1, 1}, -1); // I 4, U 4
        m.add("b", new byte[]{0, 0, 0, 0}, new byte[]{1, 0, 0, 0}, -1); // I 0, U 1
        assertEquals(5.0 / 6, m.perClassIoU().get("a"), 1e-12, "sum of intersections over sum of unions, not the mean of 1/2 and 1");
        assertEquals(0.0, m.perClassIoU().get("b"));
        assertEquals((5.0 / 6 + 0) / 2, m.mIoU(), 1e-12);
        // foreground I 5 U 7; background: ep1 I 2 U 3, ep2 I 0 U 0, ep3 I 3 U 4 -> 5 / 7
        assertEquals((5.0 / 7 + 5.0 / 7) / 2, m.fbIoU(), 1e-12);
        assertEquals(3, m.episodes());
    }

    @Test
    void boundaryFMeasureHasTheDavisTolerance() {
        int w = 256, h = 256; // tolerance ceil(0.008 x 362.04) = 3 px
        byte[] truth = mask(w, h, 50, 50, 150, 150);
        assertEquals(1.0, Metrics.boundaryF(truth, truth, w, h), 1e-12);
        assertEquals(1.0, Metrics.boundaryF(mask(w, h, 53, 50, 153, 150), truth, w, h), 1e-12, "3 px off: within tolerance");
        double far = Metrics.boundaryF(mask(w, h, 60, 50, 160, 150), truth, w, h);
        assertTrue(far > 0.3 && far < 0.7, "10 px off: only the top and bottom edges match: " + far);
        assertEquals(0.0, Metrics.boundaryF(new byte[w * h], truth, w, h));
        assertEquals(1.0, Metrics.boundaryF(new byte[w * h], new byte[w * h], w, h));
        Metrics m = new Metrics();
        m.addFrame("v", truth, truth, w, h, -1);
        m.addFrame("v", new byte[w * h], truth, w, h, -1);
        assertEquals(0.5, m.j(), 1e-12);
        assertEquals(0.5, m.f(), 1e-12);
        // a frame's void label (255) counts for nothing in J, and is not object in F
        byte[] voided = truth.clone(), pred = truth.clone();
        for (int x = 0; x < w; x++) voided[x] = (byte) 255;
        Metrics v = new Metrics();
        assertEquals(1.0, v.addFrame("v", pred, voided, w, h, 255).iou(), 1e-12);
        assertEquals(1.0, v.f(), 1e-12);
    }
}
