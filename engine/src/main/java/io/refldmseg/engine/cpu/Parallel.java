package io.refldmseg.engine.cpu;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/** Runs independent tasks on all cores (the fork-join common pool plus the calling thread). */
final class Parallel {
    static final int THREADS = Runtime.getRuntime().availableProcessors();

    private Parallel() {
    }

    static void forEach(int tasks, IntConsumer body) {
        if (tasks == 1 || THREADS == 1) {
            for (int i = 0; i < tasks; i++) body.accept(i);
        } else {
            IntStream.range(0, tasks).parallel().forEach(body);
        }
    }

    /** Splits [0, n) into about {@code 4 x cores} chunks of at least {@code minChunk} and runs them in parallel. */
    static void forRange(int n, int minChunk, RangeBody body) {
        int chunks = Math.max(1, Math.min(THREADS * 4, n / Math.max(1, minChunk)));
        int size = (n + chunks - 1) / chunks;
        forEach(chunks, c -> {
            int from = c * size, to = Math.min(n, from + size);
            if (from < to) body.run(from, to);
        });
    }

    interface RangeBody {
        void run(int from, int to);
    }
}
