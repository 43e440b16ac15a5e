package io.refldmseg.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's fp32 FMA roof as the Vector API reaches it: fourteen independent FMA chains per
 * thread (enough to cover the FMA latency on two ports; with m and b, all 16 AVX2 registers), on 1 ..
 * cores threads at once. Each chain adds into its accumulator, acc = m * b + acc, as the GEMM
 * kernels do: with the accumulator as a multiplicand (acc = acc * m + b) the JIT's 256-bit code ran
 * at about three quarters of the FMA rate on Zen 4, so an AVX2 roof read low. This is the
 * "peak" that GEMM and network GFLOP/s figures should be read against on the machine at hand:
 * {@code java --add-modules jdk.incubator.vector -cp ... io.refldmseg.bench.Peak}.
 */
public final class Peak {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int CHAINS = 14;
    private static final long ITERATIONS = 100_000_000L;

    public static void main(String[] args) throws InterruptedException {
        int cores = Runtime.getRuntime().availableProcessors();
        for (int threads = 1; threads <= cores; threads++)
            System.out.printf("%d thread%s: %.1f GFLOP/s fp32 FMA (%d-bit vectors, best of 3)%n", threads, threads == 1 ? "" : "s", roof(threads),
                    S.vectorBitSize());
    }

    /** The best of three timings on {@code threads} threads, GFLOP/s. */
    static double roof(int threads) throws InterruptedException {
        chains(2_000_000L); // compile the loop before timing it
        double best = 0;
        for (int rep = 0; rep < 3; rep++) best = Math.max(best, gflops(threads));
        return best;
    }

    private static double gflops(int threads) throws InterruptedException {
        Thread[] workers = new Thread[threads];
        float[] sink = new float[threads];
        long t0 = System.nanoTime();
        for (int t = 0; t < threads; t++) {
            int id = t;
            workers[t] = new Thread(() -> sink[id] = chains(ITERATIONS));
            workers[t].start();
        }
        for (Thread w : workers) w.join();
        double seconds = (System.nanoTime() - t0) / 1e9;
        return threads * ITERATIONS * CHAINS * S.length() * 2.0 / seconds / 1e9;
    }

    /** CHAINS independent a += m * b chains; the result is returned so the loop is not dead code. */
    private static float chains(long iterations) {
        FloatVector m = FloatVector.broadcast(S, 0.999f), b = FloatVector.broadcast(S, 0.001f);
        FloatVector a0 = FloatVector.broadcast(S, 1f), a1 = a0.add(1), a2 = a0.add(2), a3 = a0.add(3), a4 = a0.add(4), a5 = a0.add(5),
                a6 = a0.add(6), a7 = a0.add(7), a8 = a0.add(8), a9 = a0.add(9), a10 = a0.add(10), a11 = a0.add(11), a12 = a0.add(12),
                a13 = a0.add(13);
        for (long i = 0; i < iterations; i++) {
            a0 = m.fma(b, a0);
            a1 = m.fma(b, a1);
            a2 = m.fma(b, a2);
            a3 = m.fma(b, a3);
            a4 = m.fma(b, a4);
            a5 = m.fma(b, a5);
            a6 = m.fma(b, a6);
            a7 = m.fma(b, a7);
            a8 = m.fma(b, a8);
            a9 = m.fma(b, a9);
            a10 = m.fma(b, a10);
            a11 = m.fma(b, a11);
            a12 = m.fma(b, a12);
            a13 = m.fma(b, a13);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11).add(a12).add(a13).lane(0);
    }
}
