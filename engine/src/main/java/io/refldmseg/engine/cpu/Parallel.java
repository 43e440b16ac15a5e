package io.refldmseg.engine.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * Runs independent tasks on all cores: the calling thread plus {@code THREADS - 1} daemon
 * workers of the engine's own (refldmseg-cpu-N), which take task indices from a shared counter.
 * Not the fork-join common pool: its workers clear their ThreadLocals after every task, so every
 * op re-allocated (and zeroed) the per-thread scratch of the GEMM and Winograd (~0.6 GB per UNet
 * step). Calls from several threads take turns; a call from inside a task runs serially.
 */
final class Parallel {
    static final int THREADS = Runtime.getRuntime().availableProcessors();
    private static final ReentrantLock TURN = new ReentrantLock();
    private static final Worker[] WORKERS = new Worker[THREADS - 1];
    private static final ThreadLocal<Boolean> IN_TASK = ThreadLocal.withInitial(() -> false);

    static {
        for (int i = 0; i < WORKERS.length; i++) {
            WORKERS[i] = new Worker();
            Thread t = new Thread(WORKERS[i], "refldmseg-cpu-" + (i + 1));
            t.setDaemon(true);
            WORKERS[i].thread = t;
            t.start();
        }
    }

    private Parallel() {
    }

    static void forEach(int tasks, IntConsumer body) {
        if (tasks == 1 || THREADS == 1 || IN_TASK.get()) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        TURN.lock();
        try {
            Job job = new Job(tasks, body, Thread.currentThread());
            for (Worker w : WORKERS) w.start(job);
            job.work();
            job.awaitAll();
            Throwable failure = job.failure.get();
            if (failure instanceof RuntimeException e) throw e;
            if (failure instanceof Error e) throw e;
            if (failure != null) throw new RuntimeException(failure);
        } finally {
            TURN.unlock();
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

    /** One forEach call: the next task index, the tasks finished, the first failure. */
    private static final class Job {
        final int tasks;
        final IntConsumer body;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger(), done = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(int tasks, IntConsumer body, Thread caller) {
            this.tasks = tasks;
            this.body = body;
            this.caller = caller;
        }

        void work() {
            IN_TASK.set(true);
            try {
                for (int i; (i = next.getAndIncrement()) < tasks; ) {
                    try {
                        if (failure.get() == null) body.accept(i);
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                    if (done.incrementAndGet() == tasks) LockSupport.unpark(caller);
                }
            } finally {
                IN_TASK.set(false);
            }
        }

        void awaitAll() {
            for (int spins = 0; done.get() < tasks; spins++) {
                if (spins < 1000) Thread.onSpinWait();
                else LockSupport.park(this);
            }
        }
    }

    private static final class Worker implements Runnable {
        private final AtomicReference<Job> pending = new AtomicReference<>();
        Thread thread;

        void start(Job job) {
            pending.set(job);
            LockSupport.unpark(thread);
        }

        @Override
        public void run() {
            while (true) {
                Job job = pending.getAndSet(null);
                if (job == null) {
                    LockSupport.park(this);
                    continue;
                }
                job.work();
            }
        }
    }
}
