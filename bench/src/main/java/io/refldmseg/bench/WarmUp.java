package io.refldmseg.bench;

import java.time.Duration;

/** Warm-up before timing: the JIT is still compiling after the first calls of a forward or an op. */
final class WarmUp {
    private WarmUp() {
    }

    /** Runs {@code call} at least {@code minCalls} times and for at least {@code minTime}; returns how many times it ran. */
    static int run(Runnable call, int minCalls, Duration minTime) {
        long t0 = System.nanoTime(), nanos = minTime.toNanos();
        int n = 0;
        while (n < minCalls || System.nanoTime() - t0 < nanos) {
            call.run();
            n++;
        }
        return n;
    }
}
