package io.refldmseg.engine.cpu;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The CPU backend's workspace: output arrays of tensors that died in a closed {@link
 * Backend.Scope}, reused by later ops of the same length. A UNet step allocated ~2.6 GB of
 * outputs; zeroing them and the young-GC pauses they caused cost ~7% of the step. Arrays from the
 * pool hold stale values, so only ops that write every output element take them.
 */
final class BufferPool {
    /** The most the pool holds; beyond it dead arrays are left to the GC. */
    private static final long MAX_POOLED_BYTES = 1L << 30;

    private final Map<Integer, ArrayDeque<float[]>> free = new HashMap<>();
    private long pooledBytes;
    /** The open scopes of each thread, innermost last: the arrays taken while each was innermost. */
    private final ThreadLocal<ArrayDeque<List<float[]>>> open = ThreadLocal.withInitial(ArrayDeque::new);

    /** An array of n floats with undefined contents, for an output its op writes in full. */
    float[] take(int n) {
        float[] a;
        synchronized (this) {
            ArrayDeque<float[]> q = free.get(n);
            a = q == null ? null : q.poll();
            if (a != null) pooledBytes -= (long) n * Float.BYTES;
        }
        if (a == null) a = new float[n];
        List<float[]> scope = open.get().peekLast();
        if (scope != null) scope.add(a);
        return a;
    }

    Backend.Scope scope() {
        ArrayDeque<List<float[]>> stack = open.get();
        List<float[]> taken = new ArrayList<>();
        stack.addLast(taken);
        return new Backend.Scope() {
            private final Set<float[]> kept = Collections.newSetFromMap(new IdentityHashMap<>());
            private boolean closed;

            @Override
            public <T extends Tensor> T keep(T t) {
                if (t instanceof CpuTensor c) kept.add(c.data);
                return t;
            }

            @Override
            public void close() {
                if (closed) return;
                if (stack.peekLast() != taken) throw new IllegalStateException("scopes closed out of order");
                closed = true;
                stack.removeLast();
                List<float[]> outer = stack.peekLast();
                for (float[] a : taken) {
                    if (kept.contains(a)) {
                        if (outer != null) outer.add(a);
                    } else {
                        give(a);
                    }
                }
            }
        };
    }

    /** Drops every pooled array (arrays of open scopes are not pooled yet and stay theirs). */
    synchronized void clear() {
        free.clear();
        pooledBytes = 0;
    }

    private synchronized void give(float[] a) {
        long bytes = (long) a.length * Float.BYTES;
        if (pooledBytes + bytes > MAX_POOLED_BYTES) return;
        free.computeIfAbsent(a.length, n -> new ArrayDeque<>()).push(a);
        pooledBytes += bytes;
    }
}
