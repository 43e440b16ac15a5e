package io.refldmseg.bench;

import io.refldmseg.engine.ProfilingBackend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;

import java.time.Duration;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Where a full-size forward spends its time, per op, on the CPU backend:
 * {@code java ... io.refldmseg.bench.Profile unet_b1|unet_b3|vae_encode|vae_decode|clip [runs [winogradMinPixels]]}.
 */
public final class Profile {
    public static void main(String[] args) {
        String what = args.length > 0 ? args[0] : "unet_b1";
        int runs = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int winograd = args.length > 2 ? Integer.parseInt(args[2]) : CpuBackend.DEFAULT_WINOGRAD_MIN_PIXELS;
        ProfilingBackend be = new ProfilingBackend(new CpuBackend(CpuBackend.cores(), winograd));
        Supplier<Tensor> forward = Workloads.build(what, be).forward(); // the same networks and inputs NetworkBench times
        // after one forward the JIT is still compiling: a profile taken then reads the first layers slow
        int warmups = WarmUp.run(forward::get, 3, Duration.ofSeconds(10));
        be.reset();
        long t0 = System.nanoTime();
        for (int i = 0; i < runs; i++) forward.get();
        double total = (System.nanoTime() - t0) / 1e6 / runs;
        double gflop = be.flops() / 1e9 / runs;
        System.out.printf("%s: %.0f ms per forward (mean of %d after %d warm-up forwards) on %s, Winograd from %d pixels; %.1f GFLOP counted, %.1f GFLOP/s%n",
                what, total, runs, warmups, be.name(), winograd, gflop, gflop / total * 1e3);
        for (Map.Entry<String, double[]> e : be.report().entrySet()) {
            double ms = e.getValue()[0] / runs, op = e.getValue()[2] / runs;
            System.out.printf("  %-18s %8.1f ms %5.1f%% %6.0f calls%s%n", e.getKey(), ms, 100 * ms / total, e.getValue()[1] / runs,
                    op > 0 ? String.format(" %7.1f GFLOP/s", op / ms * 1e3) : "");
        }
    }
}
