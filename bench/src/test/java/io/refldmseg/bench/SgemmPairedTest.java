package io.refldmseg.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class SgemmPairedTest {
    /** Both sides run on the bench's data; the quartiles of the per-round ratio are ordered and the medians are real times. */
    @Test
    void pairsOursWithOpenBlasRoundByRound() {
        assumeTrue(OpenBlas.find().isPresent(), "OpenBLAS not installed");
        SgemmPaired.Row row = SgemmPaired.measure("48x40x72", 1, 5);
        assertEquals("48x40x72", row.shape());
        assertTrue(row.oursMs() > 0 && row.blasMs() > 0, row::toString);
        assertTrue(row.ratioQ1() <= row.ratioMedian() && row.ratioMedian() <= row.ratioQ3(), row::toString);
        assertTrue(row.ratioQ1() > 0 && Double.isFinite(row.ratioQ3()), row::toString);
        assertEquals(2.0 * 48 * 40 * 72 / 1e9, row.gflop(), 1e-15);
    }
}
