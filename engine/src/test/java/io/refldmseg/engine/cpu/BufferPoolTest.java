package io.refldmseg.engine.cpu;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Scopes: dead intermediates are reused, kept tensors (and their views) never are, scopes nest. */
class BufferPoolTest {
    private static float[] data(Tensor t) {
        return ((CpuTensor) t).data;
    }

    @Test
    void deadTensorsAreReusedKeptOnesAreNot() {
        CpuBackend be = new CpuBackend();
        Tensor x = be.tensor(new float[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, 17);
        Tensor dead, kept;
        try (Backend.Scope scope = be.scope()) {
            dead = be.scale(x, 2f);
            kept = scope.keep(be.reshape(be.scale(x, 3f), 1, 17)); // a view kept keeps its array
        }
        Tensor next = be.scale(x, 5f);
        assertSame(data(dead), data(next), "a dead array is handed out again");
        Tensor another = be.scale(x, 7f);
        assertNotSame(data(kept), data(another), "a kept array is never handed out");
        float[] k = be.toHost(kept);
        for (int i = 0; i < 17; i++) assertEquals(3f * (i + 1), k[i], "kept values intact at " + i);
    }

    @Test
    void releasedWorkspaceIsNotHandedOutAgain() {
        CpuBackend be = new CpuBackend();
        Tensor x = be.tensor(new float[33], 33);
        Tensor dead, kept;
        try (Backend.Scope scope = be.scope()) {
            dead = be.scale(x, 2f);
            kept = scope.keep(be.scale(x, 3f));
        }
        be.releaseWorkspace();
        Tensor next = be.scale(x, 5f);
        assertNotSame(data(dead), data(next), "a released array is left to the collector");
        assertNotSame(data(kept), data(next));
        assertEquals(0f, be.toHost(kept)[0]);
        try (Backend.Scope scope = be.scope()) {
            dead = be.scale(x, 2f);
        }
        assertSame(data(dead), data(be.scale(x, 7f)), "the pool works as before after a release");
    }

    @Test
    void keptTensorsPassToTheEnclosingScope() {
        CpuBackend be = new CpuBackend();
        Tensor x = be.tensor(new float[40], 40);
        Tensor inner, outer;
        try (Backend.Scope o = be.scope()) {
            try (Backend.Scope i = be.scope()) {
                inner = i.keep(be.scale(x, 2f));
            }
            outer = o.keep(be.add(inner, x));
        }
        Tensor a = be.scale(x, 3f), b = be.scale(x, 4f);
        assertSame(data(inner), data(a), "kept by the inner scope only: dead when the outer one closes");
        assertNotSame(data(outer), data(b));
        assertNotSame(data(outer), data(a));
    }

    @Test
    void scopesMustCloseInnermostFirst() {
        CpuBackend be = new CpuBackend();
        Backend.Scope outer = be.scope(), inner = be.scope();
        assertThrows(IllegalStateException.class, outer::close);
        inner.close();
        outer.close();
    }
}
