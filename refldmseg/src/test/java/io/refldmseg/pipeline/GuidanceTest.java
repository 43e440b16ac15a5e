package io.refldmseg.pipeline;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class GuidanceTest {
    @Test
    void threeBranchGuidanceByHand() {
        // rows (text, image, uncond) of two elements: e = u + g_t (t - i) + g_q (i - u)
        float[] raw = {3f, 1f, 2f, 1f, 0.5f, 0f};
        float[] e = Guidance.combine(raw, 2, 7f, 1.5f);
        assertEquals(0.5f + 7f * (3f - 2f) + 1.5f * (2f - 0.5f), e[0], 1e-6f);
        assertEquals(0f + 7f * (1f - 1f) + 1.5f * (1f - 0f), e[1], 1e-6f);
        assertTrue(Guidance.applies(1f, 1f));
        assertFalse(Guidance.applies(0.9f, 1.5f), "a scale below 1 turns guidance off (one unguided row)");
    }
}
