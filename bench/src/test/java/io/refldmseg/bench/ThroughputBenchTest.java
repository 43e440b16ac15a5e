package io.refldmseg.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ThroughputBenchTest {
    /** Each round's ratio is to the sequential runs on either side of it, not to one baseline for the whole run. */
    @Test
    void eachRoundIsComparedWithTheSequentialRunsAroundIt() {
        double[] ratio = ThroughputBench.bracketedRatios(new double[]{1.0, 1.1, 0.9}, new double[]{1.0, 1.2, 1.0, 0.8});
        assertArrayEquals(new double[]{1.0 / 1.1, 1.1 / 1.1, 0.9 / 0.9}, ratio, 1e-12);
        assertThrows(IllegalArgumentException.class, () -> ThroughputBench.bracketedRatios(new double[]{1, 1}, new double[]{1, 1}));
    }
}
