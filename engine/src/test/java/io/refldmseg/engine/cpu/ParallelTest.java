package io.refldmseg.engine.cpu;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A backend's own task runner: every task once, failures reach the caller, nesting and concurrent
 * callers work; two pools are independent (no global lock) and close stops their threads.
 */
class ParallelTest {
    static final Parallel PAR = new Parallel(Math.max(2, CpuBackend.cores()));

    @Test
    void everyTaskRunsExactlyOnce() {
        for (int round = 0; round < 200; round++) {
            int tasks = 1 + round % 37;
            AtomicIntegerArray runs = new AtomicIntegerArray(tasks);
            PAR.forEach(tasks, runs::incrementAndGet);
            for (int i = 0; i < tasks; i++) assertEquals(1, runs.get(i), "task " + i + " of " + tasks);
        }
    }

    @Test
    void aFailingTaskFailsTheCallAndTheRunnerStaysUsable() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> PAR.forEach(8, i -> {
            if (i == 5) throw new IllegalStateException("task 5");
        }));
        assertEquals("task 5", e.getMessage());
        AtomicIntegerArray runs = new AtomicIntegerArray(8);
        PAR.forEach(8, runs::incrementAndGet);
        for (int i = 0; i < 8; i++) assertEquals(1, runs.get(i));
    }

    @Test
    void nestedAndConcurrentCallsComplete() throws Exception {
        AtomicIntegerArray runs = new AtomicIntegerArray(2 * 6 * 5);
        Runnable caller = () -> {
            for (int rep = 0; rep < 50; rep++)
                PAR.forEach(6, i -> PAR.forEach(5, j -> runs.incrementAndGet(i * 5 + j)));
        };
        Thread other = new Thread(() -> {
            for (int rep = 0; rep < 50; rep++)
                PAR.forEach(6, i -> PAR.forEach(5, j -> runs.incrementAndGet(30 + i * 5 + j)));
        });
        other.start();
        caller.run();
        other.join();
        for (int i = 0; i < runs.length(); i++) assertEquals(50, runs.get(i), "cell " + i);
    }

    /** A call in one pool that waits for a call in another pool to start: with one shared lock it would never return. */
    @Test
    void twoPoolsRunAtTheSameTime() throws Exception {
        try (Parallel a = new Parallel(2); Parallel b = new Parallel(2)) {
            CountDownLatch aInside = new CountDownLatch(2), bInside = new CountDownLatch(2);
            Thread ta = new Thread(() -> a.forEach(2, i -> {
                aInside.countDown();
                await(bInside);
            }));
            ta.start();
            assertTrue(aInside.await(10, TimeUnit.SECONDS), "pool a started both tasks");
            b.forEach(2, i -> bInside.countDown());
            ta.join(10_000);
            assertFalse(ta.isAlive(), "pool a finished once pool b had run while a was busy");
        }
    }

    @Test
    void aBackendOwnsItsThreadsAndCloseStopsThem() throws Exception {
        long before = workerThreads();
        Backend be = new CpuBackend(3);
        assertEquals(before + 2, workerThreads(), "3 threads = the caller + 2 workers");
        assertTrue(be.name().startsWith("cpu (3 threads"), be.name());
        Tensor x = be.tensor(new float[4096], 1, 64, 64, 1);
        assertEquals(4096, be.toHost(be.silu(x)).length);
        be.close();
        for (int i = 0; i < 100 && workerThreads() > before; i++) Thread.sleep(20);
        assertEquals(before, workerThreads(), "close stopped the workers");
        assertThrows(IllegalStateException.class, () -> be.silu(be.tensor(new float[1 << 16], 1, 256, 256, 1)));
        assertThrows(IllegalArgumentException.class, () -> new CpuBackend(0));
    }

    private static long workerThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.isAlive() && t.getName().startsWith("refldmseg-cpu-")).count();
    }

    private static void await(CountDownLatch latch) {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) throw new IllegalStateException("pool b never ran while pool a was busy");
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
