package io.refldmseg.bench;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runs {@link SgemmBench} under JMH and prints one table (shape, ours, OpenBLAS, ratio, GFLOP/s),
 * also written as JSON to bench/results/sgemm-&lt;time&gt;.json. Arguments, if any, are the shapes
 * (MxNxK) to run instead of the bench's list, and {@code --threads N} (both libraries on N threads;
 * default every core); {@code --paired R} times the two in R alternating rounds in this JVM instead
 * ({@link SgemmPaired}: one ratio per round, median and quartiles), for noisy shared machines.
 */
public final class SgemmTable {
    private static int positive(String option, String[] args, int at) {
        if (at >= args.length) throw new IllegalArgumentException(option + " needs a number");
        int value = Integer.parseInt(args[at]);
        if (value < 1) throw new IllegalArgumentException(option + " must be at least 1, got " + value);
        return value;
    }

    /** The JMH bench's shape list (its {@code @Param}). */
    static String[] defaultShapes() {
        try {
            return SgemmBench.class.getField("shape").getAnnotation(org.openjdk.jmh.annotations.Param.class).value();
        } catch (NoSuchFieldException e) {
            throw new AssertionError(e);
        }
    }

    public static void main(String[] args) throws RunnerException, IOException {
        int threads = Runtime.getRuntime().availableProcessors(), rounds = 0;
        List<String> shapes = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--threads" -> threads = positive("--threads", args, ++i);
                case "--paired" -> rounds = positive("--paired", args, ++i);
                default -> shapes.add(args[i]);
            }
        }
        if (rounds > 0) {
            if (shapes.isEmpty()) shapes = List.of(defaultShapes());
            SgemmPaired.run(shapes, threads, rounds);
            return;
        }
        var options = new OptionsBuilder().include(SgemmBench.class.getName()).param("threads", Integer.toString(threads));
        if (!shapes.isEmpty()) options.param("shape", shapes.toArray(String[]::new));
        Collection<RunResult> results = new Runner(options
                .forks(1).warmupIterations(3).warmupTime(TimeValue.seconds(1)).measurementIterations(5).measurementTime(TimeValue.seconds(1))
                .jvmArgsAppend("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xms4g", "-Xmx4g", "-XX:+AlwaysPreTouch")
                .build()).run();
        Map<String, double[]> rows = new LinkedHashMap<>(); // shape -> {ours ms, openblas ms}
        for (RunResult r : results) {
            String shape = r.getParams().getParam("shape");
            String which = r.getParams().getBenchmark().endsWith("ours") ? "ours" : "openblas";
            rows.computeIfAbsent(shape, s -> new double[]{Double.NaN, Double.NaN})[which.equals("ours") ? 0 : 1] = r.getPrimaryResult().getScore();
        }
        StringBuilder json = new StringBuilder("{\"date\":\"" + Instant.now() + "\",\"threads\":" + threads
                + ",\"vector_bits\":" + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() + ",\"jvm\":\"" + System.getProperty("java.vm.version") + "\",\"rows\":[");
        System.out.printf("%n%-16s %10s %10s %8s %12s %12s%n", "sgemm MxNxK", "ours ms", "OpenBLAS", "ratio", "ours GF/s", "OpenBLAS GF/s");
        String sep = "";
        for (Map.Entry<String, double[]> e : rows.entrySet()) {
            String[] p = e.getKey().split("x");
            double flop = 2.0 * Long.parseLong(p[0]) * Long.parseLong(p[1]) * Long.parseLong(p[2]);
            double ours = e.getValue()[0], blas = e.getValue()[1];
            double gOurs = flop / ours / 1e6, gBlas = flop / blas / 1e6;
            System.out.printf("%-16s %10.3f %10.3f %8.2f %12.1f %12.1f%n", e.getKey(), ours, blas, gOurs / gBlas, gOurs, gBlas);
            json.append(sep).append(String.format("{\"shape\":\"%s\",\"ours_ms\":%.4f,\"openblas_ms\":%.4f,\"ours_gflops\":%.1f,\"openblas_gflops\":%.1f}",
                    e.getKey(), ours, blas, gOurs, gBlas).replace("NaN", "null"));
            sep = ",";
        }
        json.append("]}\n");
        ResultFiles.write("sgemm", json);
    }
}
