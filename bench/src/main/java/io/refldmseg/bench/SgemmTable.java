package io.refldmseg.bench;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.io.IOException;
import java.time.Instant;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runs {@link SgemmBench} under JMH and prints one table (shape, ours, OpenBLAS, ratio, GFLOP/s),
 * also written as JSON to bench/results/sgemm-&lt;time&gt;.json. Arguments, if any, are the shapes
 * (MxNxK) to run instead of the bench's list, optionally after {@code --threads N} (both libraries
 * on N threads; default every core).
 */
public final class SgemmTable {
    public static void main(String[] args) throws RunnerException, IOException {
        int threads = Runtime.getRuntime().availableProcessors();
        if (args.length >= 2 && args[0].equals("--threads")) {
            threads = Integer.parseInt(args[1]);
            if (threads < 1) throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
            args = java.util.Arrays.copyOfRange(args, 2, args.length);
        }
        var options = new OptionsBuilder().include(SgemmBench.class.getName()).param("threads", Integer.toString(threads));
        if (args.length > 0) options.param("shape", args);
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
