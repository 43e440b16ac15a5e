package io.refldmseg.bench;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.cpu.CpuBackend;

import java.time.Duration;

/**
 * Two of our {@link Workloads} against each other in one JVM, alternating round by round after both
 * warmed up: {@code java ... io.refldmseg.bench.WorkloadPair A B [rounds]}, e.g. {@code unet_b3
 * unet_b3_nstep 9}. Prints each side's median ms and the median and quartiles of the per-round
 * ratio A / B, so an engine change that one launch's drift would hide (this VM's runs move 10-20%)
 * is read from the same rounds.
 */
public final class WorkloadPair {
    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: WorkloadPair <workload A> <workload B> [rounds]");
            System.exit(2);
        }
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 9;
        Backend be = new CpuBackend();
        Workloads.Workload a = Workloads.build(args[0], be), b = Workloads.build(args[1], be);
        WarmUp.run(() -> a.forward().get(), 3, Duration.ofSeconds(10));
        WarmUp.run(() -> b.forward().get(), 3, Duration.ofSeconds(10));
        double[][] ms = Alternation.run(rounds, a::millis, b::millis);
        double[] ratio = Alternation.ratios(ms[0], ms[1]);
        System.out.printf("%s: %.1f ms, %s: %.1f ms (medians of %d alternating rounds on %s); %s / %s = %.3f (q1..q3 %.3f..%.3f)%n",
                a.name(), Stats.median(ms[0]), b.name(), Stats.median(ms[1]), rounds, be.name(), a.name(), b.name(),
                Stats.median(ratio), Stats.quantile(ratio, 0.25), Stats.quantile(ratio, 0.75));
    }
}
