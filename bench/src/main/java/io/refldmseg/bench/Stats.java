package io.refldmseg.bench;

import java.util.Arrays;

/** Order statistics of timings and ratios. */
final class Stats {
    private Stats() {
    }

    static double median(double[] values) {
        return quantile(values, 0.5);
    }

    /** The q-quantile of {@code values} (any order), interpolating linearly between order statistics. */
    static double quantile(double[] values, double q) {
        double[] v = values.clone();
        Arrays.sort(v);
        double at = q * (v.length - 1);
        int lo = (int) Math.floor(at), hi = Math.min(v.length - 1, lo + 1);
        return v[lo] + (at - lo) * (v[hi] - v[lo]);
    }
}
