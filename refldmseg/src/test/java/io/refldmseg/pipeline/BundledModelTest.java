package io.refldmseg.pipeline;

import io.refldmseg.engine.TestBackend;
import io.refldmseg.eval.Metrics;
import io.refldmseg.eval.SyntheticScenes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The bundled model segments its domain: on held-out scenes (seed 2027, never trained on) the
 * support decides the mask. The kind, not the colour, is the target, so one query segmented with
 * supports of two different kinds must give two different masks, each on its own kind's objects.
 */
class BundledModelTest {
    private static RefLdmSeg seg;

    @BeforeAll
    static void load() {
        seg = RefLdmSeg.load(BundledModel.checkpoints(), TestBackend.create(), s -> {
        }).closingBackend();
    }

    @AfterAll
    static void close() {
        seg.close();
    }

    private static double iou(byte[] pred, byte[] truth) {
        return Metrics.overlap(pred, truth, -1).iou();
    }

    /** The first scene after {@code from} (seed 2027) that shows {@code kind}. */
    private static SyntheticScenes.Scene showing(int kind, int from) {
        for (int i = from; ; i++) {
            SyntheticScenes.Scene s = SyntheticScenes.scene(2027, i);
            if (s.contains(kind)) return s;
        }
    }

    private byte[] segment(SyntheticScenes.Scene query, SyntheticScenes.Scene support, int kind) {
        return seg.segment(query.image(), List.of(new Support(support.image(), new LabelMap(256, 256, support.mask(kind)))), Options.defaults()).mask();
    }

    /**
     * Six held-out queries showing two kinds each, segmented with a support of either kind: the two
     * masks always differ, and on average a mask covers its own kind's objects (IoU) at least 1.5x
     * as well as the other kind's. A model that ignored the support (or segmented every object)
     * would give equal masks or equal overlaps.
     */
    @Test
    void theSupportsKindDecidesTheMask() {
        int queries = 0;
        double own = 0, crossed = 0;
        List<String> seen = new ArrayList<>();
        for (int q = 0; queries < 6; q++) {
            SyntheticScenes.Scene query = SyntheticScenes.scene(2027, q);
            List<Integer> kinds = new ArrayList<>();
            for (int k = 0; k < SyntheticScenes.KINDS.size(); k++) if (query.contains(k)) kinds.add(k);
            if (kinds.size() < 2) continue;
            queries++;
            int a = kinds.get(0), b = kinds.get(1);
            byte[] ma = segment(query, showing(a, 1000 + q), a), mb = segment(query, showing(b, 2000 + q), b);
            byte[] ta = query.mask(a), tb = query.mask(b);
            own += iou(ma, ta) + iou(mb, tb);
            crossed += iou(ma, tb) + iou(mb, ta);
            seen.add(String.format("scene %d %s/%s: IoU own %.2f / %.2f, crossed %.2f / %.2f", q, SyntheticScenes.KINDS.get(a),
                    SyntheticScenes.KINDS.get(b), iou(ma, ta), iou(mb, tb), iou(ma, tb), iou(mb, ta)));
            assertFalse(java.util.Arrays.equals(ma, mb), "scene " + q + ": supports of two kinds gave the same mask");
        }
        own /= 2 * queries;
        crossed /= 2 * queries;
        String report = String.format("mean IoU with its own kind %.3f, with the other kind %.3f%n", own, crossed) + String.join("\n", seen);
        assertTrue(own >= 1.5 * crossed && own >= 0.4, report);
    }
}
