package io.refldmseg.eval;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class SyntheticScenesTest {
    @Test
    void scenesAreSeededAndTheirMasksMarkTheirKinds() {
        SyntheticScenes.Scene a = SyntheticScenes.scene(3, 7), b = SyntheticScenes.scene(3, 7), c = SyntheticScenes.scene(4, 7);
        assertArrayEquals(a.image().rgb(), b.image().rgb(), "same seed and index, same picture");
        assertFalse(java.util.Arrays.equals(a.image().rgb(), c.image().rgb()));
        assertEquals(256, a.image().width());
        int shown = 0;
        for (int k = 0; k < SyntheticScenes.KINDS.size(); k++) {
            byte[] m = a.mask(k);
            int on = 0;
            for (byte v : m) on += v;
            assertEquals(a.contains(k), on >= SyntheticScenes.MIN_VISIBLE, SyntheticScenes.KINDS.get(k));
            if (a.contains(k)) shown++;
        }
        assertTrue(shown >= 1, "a scene shows at least one kind");
        // over many scenes every kind appears and objects are 24-80 px: no mask covers more than a few objects' area
        for (int k = 0; k < 5; k++) assertFalse(SyntheticScenes.showing(1, 40, k).isEmpty(), SyntheticScenes.KINDS.get(k));
    }
}
