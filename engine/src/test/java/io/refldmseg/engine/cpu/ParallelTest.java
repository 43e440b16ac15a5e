package io.refldmseg.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.*;

/** The engine's own task runner: every task once, failures reach the caller, nesting and concurrent callers work. */
class ParallelTest {
    @Test
    void everyTaskRunsExactlyOnce() {
        for (int round = 0; round < 200; round++) {
            int tasks = 1 + round % 37;
            AtomicIntegerArray runs = new AtomicIntegerArray(tasks);
            Parallel.forEach(tasks, runs::incrementAndGet);
            for (int i = 0; i < tasks; i++) assertEquals(1, runs.get(i), "task " + i + " of " + tasks);
        }
    }

    @Test
    void aFailingTaskFailsTheCallAndTheRunnerStaysUsable() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.forEach(8, i -> {
            if (i == 5) throw new IllegalStateException("task 5");
        }));
        assertEquals("task 5", e.getMessage());
        AtomicIntegerArray runs = new AtomicIntegerArray(8);
        Parallel.forEach(8, runs::incrementAndGet);
        for (int i = 0; i < 8; i++) assertEquals(1, runs.get(i));
    }

    @Test
    void nestedAndConcurrentCallsComplete() throws Exception {
        AtomicIntegerArray runs = new AtomicIntegerArray(2 * 6 * 5);
        Runnable caller = () -> {
            for (int rep = 0; rep < 50; rep++)
                Parallel.forEach(6, i -> Parallel.forEach(5, j -> runs.incrementAndGet(i * 5 + j)));
        };
        Thread other = new Thread(() -> {
            for (int rep = 0; rep < 50; rep++)
                Parallel.forEach(6, i -> Parallel.forEach(5, j -> runs.incrementAndGet(30 + i * 5 + j)));
        });
        other.start();
        caller.run();
        other.join();
        for (int i = 0; i < runs.length(); i++) assertEquals(50, runs.get(i), "cell " + i);
    }
}
