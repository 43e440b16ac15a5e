package io.refldmseg.bench;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * sgemm ours vs OpenBLAS in alternating rounds inside one JVM, for shared machines whose speed
 * drifts over seconds (a neighbour on the host): JMH times one library's fork after the other, so a
 * slow spell can land on one side only. Each round times both on the same number of calls
 * ({@link Alternation}: the order flipped every round) and yields one ratio; the table gives the
 * median of those ratios and their quartiles, and the median time of each side. Uses {@link
 * SgemmBench}'s set-up, so the data and calls are the JMH bench's.
 */
final class SgemmPaired {
    private SgemmPaired() {
    }

    /** One shape: median ms of each side and the quartiles of the per-round ratio OpenBLAS time / ours. */
    record Row(String shape, double oursMs, double blasMs, double ratioQ1, double ratioMedian, double ratioQ3) {
        double gflop() {
            String[] p = shape.split("x");
            return 2.0 * Long.parseLong(p[0]) * Long.parseLong(p[1]) * Long.parseLong(p[2]) / 1e9;
        }
    }

    static void run(List<String> shapes, int threads, int rounds) throws IOException {
        StringBuilder json = new StringBuilder("{\"date\":\"" + Instant.now() + "\",\"mode\":\"paired\",\"rounds\":" + rounds + ",\"threads\":" + threads
                + ",\"vector_bits\":" + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize()
                + ",\"jvm\":\"" + System.getProperty("java.vm.version") + "\",\"rows\":[");
        System.out.printf("%-16s %10s %10s %8s %16s %12s %12s%n", "sgemm MxNxK", "ours ms", "OpenBLAS", "ratio", "ratio q1..q3", "ours GF/s", "OpenBLAS GF/s");
        String sep = "";
        for (String shape : shapes) {
            Row r = measure(shape, threads, rounds);
            System.out.printf("%-16s %10.3f %10.3f %8.2f %7.2f..%-7.2f %12.1f %12.1f%n", shape, r.oursMs(), r.blasMs(), r.ratioMedian(),
                    r.ratioQ1(), r.ratioQ3(), r.gflop() / r.oursMs() * 1e3, r.gflop() / r.blasMs() * 1e3);
            json.append(sep).append(String.format("{\"shape\":\"%s\",\"ours_ms\":%.4f,\"openblas_ms\":%.4f,\"ratio_median\":%.3f,\"ratio_q1\":%.3f,\"ratio_q3\":%.3f,"
                    + "\"ours_gflops\":%.1f,\"openblas_gflops\":%.1f}", shape, r.oursMs(), r.blasMs(), r.ratioMedian(), r.ratioQ1(), r.ratioQ3(),
                    r.gflop() / r.oursMs() * 1e3, r.gflop() / r.blasMs() * 1e3));
            sep = ",";
        }
        ResultFiles.write("sgemm-paired", json.append("]}\n"));
    }

    static Row measure(String shape, int threads, int rounds) {
        if (OpenBlas.find().isEmpty()) throw new IllegalStateException("OpenBLAS not installed (apt install libopenblas0-pthread): no baseline to pair with");
        SgemmBench bench = new SgemmBench();
        bench.shape = shape;
        bench.threads = threads;
        bench.setUp();
        try {
            Runnable ours = bench::ours, blas = bench::openblas;
            WarmUp.run(ours, 20, Duration.ofSeconds(3));
            WarmUp.run(blas, 20, Duration.ofSeconds(1));
            // calls per side per round: about 0.2 s of ours
            long t0 = System.nanoTime();
            ours.run();
            int calls = (int) Math.max(1, Math.min(1000, 2e8 / Math.max(1, System.nanoTime() - t0)));
            double[][] ms = Alternation.run(rounds, () -> time(ours, calls), () -> time(blas, calls));
            double[] oursMs = ms[0], blasMs = ms[1], ratio = Alternation.ratios(blasMs, oursMs);
            return new Row(shape, Stats.median(oursMs), Stats.median(blasMs), Stats.quantile(ratio, 0.25), Stats.median(ratio), Stats.quantile(ratio, 0.75));
        } finally {
            bench.tearDown();
        }
    }

    /** Mean ms per call over {@code calls} calls. */
    private static double time(Runnable call, int calls) {
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) call.run();
        return (System.nanoTime() - t0) / 1e6 / calls;
    }
}
