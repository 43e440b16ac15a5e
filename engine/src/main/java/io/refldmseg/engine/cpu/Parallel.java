package io.refldmseg.engine.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * One backend's workers: runs independent tasks on the calling thread plus {@code threads - 1}
 * daemon workers owned by this pool (refldmseg-cpu-P-N), which take task indices from a shared
 * counter. Each {@link CpuBackend} owns one, so two backends in one JVM run in parallel; calls
 * from several threads into the same pool take turns; a call from inside a task (of any pool)
 * runs serially. Not the fork-join common pool: its workers clear their ThreadLocals after every
 * task, so every op would re-allocate (and zero) the per-thread scratch of the GEMM and Winograd.
 */
final class Parallel implements AutoCloseable {
    private static final AtomicInteger POOLS = new AtomicInteger();
    private static final ThreadLocal<Boolean> IN_TASK = ThreadLocal.withInitial(() -> false);
    /**
     * How long a worker that finished a job, or a caller waiting for the workers, spins before it
     * parks: waking a parked thread takes tens of microseconds on a VM, longer than many ops, and
     * a network runs its ops back to back. Idle workers park once this has passed.
     */
    static final long SPIN_NANOS = Long.getLong("refldmseg.spinMicros", 200) * 1000;

    private final int threads;
    private final ReentrantLock turn = new ReentrantLock();
    private final Worker[] workers;
    private volatile boolean closed;

    /** A pool of {@code threads} (>= 1; the caller counts as one, so 1 starts no thread). */
    Parallel(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        int id = POOLS.incrementAndGet();
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker();
            Thread t = new Thread(workers[i], "refldmseg-cpu-" + id + "-" + (i + 1));
            t.setDaemon(true);
            workers[i].thread = t;
            t.start();
        }
    }

    int threads() {
        return threads;
    }

    void forEach(int tasks, IntConsumer body) {
        if (tasks == 1 || threads == 1 || IN_TASK.get()) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        turn.lock();
        try {
            if (closed) throw new IllegalStateException("the CPU backend's workers are closed");
            Job job = new Job(tasks, body, Thread.currentThread());
            for (Worker w : workers) w.start(job);
            job.work();
            job.awaitAll();
            Throwable failure = job.failure.get();
            if (failure instanceof RuntimeException e) throw e;
            if (failure instanceof Error e) throw e;
            if (failure != null) throw new RuntimeException(failure);
        } finally {
            turn.unlock();
        }
    }

    /** Splits [0, n) into about {@code 4 x threads} chunks of at least {@code minChunk} and runs them in parallel. */
    void forRange(int n, int minChunk, RangeBody body) {
        int chunks = Math.max(1, Math.min(threads * 4, n / Math.max(1, minChunk)));
        int size = (n + chunks - 1) / chunks;
        forEach(chunks, c -> {
            int from = c * size, to = Math.min(n, from + size);
            if (from < to) body.run(from, to);
        });
    }

    /** Stops the workers once the call in progress (if any) is done; later calls fail. */
    @Override
    public void close() {
        turn.lock();
        try {
            if (closed) return;
            closed = true;
            for (Worker w : workers) w.stop();
        } finally {
            turn.unlock();
        }
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
            for (long since = System.nanoTime(); done.get() < tasks; ) {
                if (System.nanoTime() - since < SPIN_NANOS) Thread.onSpinWait();
                else LockSupport.park(this);
            }
        }
    }

    private static final class Worker implements Runnable {
        private final AtomicReference<Job> pending = new AtomicReference<>();
        private volatile boolean stopped;
        Thread thread;

        void start(Job job) {
            pending.set(job);
            LockSupport.unpark(thread);
        }

        void stop() {
            stopped = true;
            LockSupport.unpark(thread);
        }

        @Override
        public void run() {
            long idleSince = System.nanoTime();
            while (!stopped) {
                Job job = pending.getAndSet(null);
                if (job == null) {
                    if (System.nanoTime() - idleSince < SPIN_NANOS) Thread.onSpinWait();
                    else LockSupport.park(this);
                    continue;
                }
                job.work();
                idleSince = System.nanoTime();
            }
        }
    }
}
