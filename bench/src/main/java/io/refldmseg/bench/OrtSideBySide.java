package io.refldmseg.bench;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ProfilingBackend;
import io.refldmseg.engine.cpu.CpuBackend;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * ONNX Runtime Java next to our CPU engine, same process, same shapes: for each ONNX export found
 * in a folder ({@code unet.onnx}: UNet step at batch 1 and 3; {@code vae_decoder.onnx}; {@code
 * vae_encoder.onnx}; {@code clip.onnx}), ORT (intra-op threads = cores, ALL_OPT) and ours in
 * {@code runs} alternating rounds (one forward each, the order flipped every round) after both have
 * warmed up, so a slow spell of a shared machine falls on both sides: median ms of each, and the
 * median and quartiles of the per-round ratio; plus ORT session start-up against our build-and-pack
 * time. Inputs are random at the {@link Workloads} shapes (ORT in NCHW, ours NHWC);
 * the weights differ (the export's against our random ones), so only the times are compared.
 * Making the exports needs PyTorch + diffusers and stays outside this repository.
 */
public final class OrtSideBySide {
    record Row(String work, double ortStartSeconds, double ortMs, double oursBuildSeconds, double oursMs, double ratioQ1, double ratio, double ratioQ3,
               double gflop) {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: OrtSideBySide <folder of ONNX exports> [runs]");
            System.exit(2);
        }
        Path dir = Path.of(args[0]);
        int runs = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        if (!Files.isDirectory(dir)) {
            System.err.println("OrtSideBySide: " + dir + " is not a folder of ONNX exports");
            System.exit(2);
        }
        Map<String, String> files = new LinkedHashMap<>(); // workload -> export file
        files.put("unet_b1", "unet.onnx");
        files.put("unet_b3", "unet.onnx");
        files.put("unet_b3_nstep", "unet.onnx"); // ORT runs the whole step; ours reuses the request's context projections
        files.put("vae_encode", "vae_encoder.onnx");
        files.put("vae_decode", "vae_decoder.onnx");
        files.put("clip", "clip.onnx");
        int threads = Runtime.getRuntime().availableProcessors();
        Backend be = new CpuBackend();
        List<Row> rows = new ArrayList<>();
        double roofBefore = Peak.roof(threads);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        for (Map.Entry<String, String> e : files.entrySet()) {
            Path onnx = dir.resolve(e.getValue());
            if (!Files.isRegularFile(onnx)) {
                System.err.printf("[ort] %s: no %s in %s, skipped%n", e.getKey(), e.getValue(), dir);
                continue;
            }
            int batch = e.getKey().startsWith("unet_b3") ? 3 : 1;
            try (OrtWork ort = OrtWork.open(env, onnx, batch, threads)) {
                Workloads.Workload ours = Workloads.build(e.getKey(), be);
                Row row = alternate(e.getKey(), runs, Duration.ofSeconds(10), ort, ours, countedGflop(e.getKey(), be));
                rows.add(row);
                System.err.printf("[ort] %s: ORT %.1f ms, ours %.1f ms, ratio %.2f%n", e.getKey(), row.ortMs(), row.oursMs(), row.ratio());
            }
        }
        // the roof before and after the workloads, the higher of the two: one taken while the OS is still
        // handing back a network's memory (or a neighbour is busy) reads low, never high
        report(rows, threads, runs, Math.max(roofBefore, Peak.roof(threads)));
    }

    /** GFLOP of one forward of the workload, counted by a {@link ProfilingBackend} over the same networks (built again for it). */
    static double countedGflop(String work, Backend be) {
        ProfilingBackend counting = new ProfilingBackend(be);
        Workloads.Workload w = Workloads.build(work, counting);
        counting.reset(); // what building did (unet_b3_nstep projects its context there) is not the forward's
        w.forward().get();
        return counting.flops() / 1e9;
    }

    /** An ORT session with random inputs at the workload's shapes; {@link #run} is one forward. */
    record OrtWork(OrtSession.SessionOptions options, OrtSession session, Map<String, OnnxTensor> inputs, double startSeconds) implements AutoCloseable {
        static OrtWork open(OrtEnvironment env, Path onnx, int batch, int threads) throws OrtException {
            long t0 = System.nanoTime();
            OrtSession.SessionOptions options = new OrtSession.SessionOptions();
            OrtSession session = null;
            Map<String, OnnxTensor> inputs = new LinkedHashMap<>();
            try {
                options.setIntraOpNumThreads(threads);
                options.setInterOpNumThreads(1);
                options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
                session = env.createSession(onnx.toString(), options);
                double start = (System.nanoTime() - t0) / 1e9;
                Random r = new Random(1);
                for (Map.Entry<String, NodeInfo> in : session.getInputInfo().entrySet()) {
                    if (!(in.getValue().getInfo() instanceof TensorInfo info))
                        throw new IllegalArgumentException(onnx + ": input '" + in.getKey() + "' is not a tensor");
                    inputs.put(in.getKey(), input(env, onnx, in.getKey(), info, batch, r));
                }
                return new OrtWork(options, session, inputs, start);
            } catch (OrtException | RuntimeException ex) {
                inputs.values().forEach(OnnxTensor::close);
                if (session != null) session.close();
                options.close();
                throw ex;
            }
        }

        void run() throws OrtException {
            try (OrtSession.Result ignored = session.run(inputs)) {
                // the outputs are not read
            }
        }

        @Override
        public void close() throws OrtException {
            inputs.values().forEach(OnnxTensor::close);
            session.close();
            options.close();
        }
    }

    /**
     * Warms both up (ours for at least 3 forwards and {@code oursWarmUp}: the JIT is still compiling
     * after the first; ORT for 2), then {@code runs} rounds of one forward each, ORT first in even rounds.
     */
    static Row alternate(String work, int runs, Duration oursWarmUp, OrtWork ort, Workloads.Workload ours, double gflop) throws OrtException {
        WarmUp.run(() -> ours.forward().get(), 3, oursWarmUp);
        ort.run();
        ort.run();
        double[][] ms = Alternation.run(runs, () -> millis(ort), ours::millis);
        double[] ortMs = ms[0], oursMs = ms[1], ratio = Alternation.ratios(ortMs, oursMs);
        return new Row(work, ort.startSeconds(), Stats.median(ortMs), ours.buildSeconds(), Stats.median(oursMs),
                Stats.quantile(ratio, 0.25), Stats.median(ratio), Stats.quantile(ratio, 0.75), gflop);
    }

    private static double millis(OrtWork ort) throws OrtException {
        long t0 = System.nanoTime();
        ort.run();
        return (System.nanoTime() - t0) / 1e6;
    }


    private static OnnxTensor input(OrtEnvironment env, Path onnx, String name, TensorInfo info, int batch, Random r) throws OrtException {
        long[] shape = concreteShape(onnx + " input '" + name + "'", info.getShape(), info.getDimensionNames(), batch);
        int n = Math.toIntExact(Arrays.stream(shape).reduce(1, Math::multiplyExact));
        return switch (info.type) {
            case FLOAT -> OnnxTensor.createTensor(env, FloatBuffer.wrap(name.toLowerCase(Locale.ROOT).contains("mask")
                    ? Workloads.keyMask(n) : Workloads.gaussian(r, n)), shape);
            case INT64 -> { // a timestep
                long[] v = new long[n];
                Arrays.fill(v, 500);
                yield OnnxTensor.createTensor(env, LongBuffer.wrap(v), shape);
            }
            default -> throw new IllegalArgumentException(onnx + ": input '" + name + "' has type " + info.type + "; the exports must be fp32 (timesteps int64)");
        };
    }

    /**
     * Sizes the dynamic dimensions of an NCHW export's input to our benchmark shapes: batch first,
     * latent height and width {@link Workloads#LATENT}, context tokens {@link Workloads#TOKENS} of
     * width {@link Workloads#CONTEXT_WIDTH}, using the export's dimension names where it has them.
     */
    static long[] concreteShape(String what, long[] declared, String[] names, int batch) {
        long[] shape = declared.clone();
        int rank = shape.length;
        for (int i = 0; i < rank; i++) {
            if (shape[i] > 0) continue;
            String dim = names != null && i < names.length && names[i] != null ? names[i].toLowerCase(Locale.ROOT) : "";
            if (dim.contains("batch") || i == 0) shape[i] = batch;
            else if (dim.contains("height") || dim.contains("width") || (rank == 4 && i >= 2)) shape[i] = Workloads.LATENT;
            else if (dim.contains("seq") || dim.contains("token") || (rank >= 2 && i == 1 && rank != 4)) shape[i] = Workloads.TOKENS;
            else if (rank == 3 && i == 2) shape[i] = Workloads.CONTEXT_WIDTH;
            else if (rank == 4 && i == 1) shape[i] = 4;
            else throw new IllegalArgumentException(what + ": cannot size dynamic dimension " + i + " ('" + dim + "') of "
                        + Arrays.toString(declared) + "; export it with a fixed size");
        }
        return shape;
    }

    private static void report(List<Row> rows, int threads, int runs, double roof) throws IOException {
        StringBuilder json = new StringBuilder("{\"date\":\"" + Instant.now() + "\",\"threads\":" + threads + ",\"runs\":" + runs
                + ",\"jvm\":\"" + System.getProperty("java.vm.version") + "\",\"roof_gflops\":" + String.format(Locale.ROOT, "%.1f", roof) + ",\"rows\":[");
        System.out.printf("%n%-12s %10s %10s %8s %12s %8s %10s %10s %14s %14s%n", "work", "ours ms", "ORT ms", "ratio", "ratio q1..q3", "GFLOP",
                "ours GF/s", "ORT GF/s", "ours build s", "ORT start s");
        String sep = "";
        for (Row r : rows) {
            double ours = r.gflop() / r.oursMs() * 1e3, ort = r.gflop() / r.ortMs() * 1e3;
            System.out.printf("%-12s %10.1f %10.1f %8.2f %5.2f..%-5.2f %8.1f %5.0f %3.0f%% %5.0f %3.0f%% %14.1f %14.1f%n", r.work(), r.oursMs(), r.ortMs(),
                    r.ratio(), r.ratioQ1(), r.ratioQ3(), r.gflop(), ours, 100 * ours / roof, ort, 100 * ort / roof, r.oursBuildSeconds(), r.ortStartSeconds());
            json.append(sep).append(String.format(Locale.ROOT, "{\"work\":\"%s\",\"ours_ms\":%.1f,\"ort_ms\":%.1f,\"ratio_median\":%.3f,\"ratio_q1\":%.3f,"
                    + "\"ratio_q3\":%.3f,\"gflop\":%.2f,\"ours_build_s\":%.2f,\"ort_start_s\":%.2f}",
                    r.work(), r.oursMs(), r.ortMs(), r.ratio(), r.ratioQ1(), r.ratioQ3(), r.gflop(), r.oursBuildSeconds(), r.ortStartSeconds()));
            sep = ",";
        }
        json.append("]}\n");
        System.out.printf("ratio = median over %d alternating rounds of ORT time / our time (> 1: we are faster); GFLOP: one forward's multiply-adds x 2 as ProfilingBackend counts them;%n"
                + "%% = of the %.1f GFLOP/s fp32 FMA roof Peak measured on %d threads in this run%n", runs, roof, threads);
        ResultFiles.write("ort", json);
    }
}
