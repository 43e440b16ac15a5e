package io.refldmseg.engine.cuda;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.LoraAdapter;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every op of the CUDA backend (fp32) against the CPU backend on random inputs at the real Ref
 * LDM-Seg shapes (UNet levels, head dims 40/80/160/64/512, VAE GroupNorm). The bound is relative
 * to the largest output magnitude and grows with the reduction length, as fp32 rounding does:
 * 1e-5 * sqrt(reduction) (both backends accumulate in fp32, in different orders).
 * Skipped, with the reason, where there is no GPU.
 */
class CudaBackendTest {
    private static final Backend cpu = new CpuBackend();
    private static final Cuda.Probe probe = Cuda.probe();
    private static CudaBackend gpu;
    private final Random random = new Random(5);

    @BeforeAll
    static void open() {
        if (probe.device().isPresent()) gpu = new CudaBackend(probe.device().get(), 2L << 30);
    }

    private Backend.Scope testScope;

    @BeforeEach
    void needsGpu() {
        Assumptions.assumeTrue(gpu != null, () -> "GPU test skipped: " + probe.reason());
        testScope = gpu.scope();
    }

    @AfterEach
    void reset() {
        if (testScope != null) testScope.close();
    }

    /** A scope frees what was made in it; a kept tensor (and its view) moves down and keeps its values. */
    @Test
    void scopesFreeActivationsAndMoveKeptTensorsDown() {
        float[] data = random(4096);
        long before;
        Tensor kept, view;
        try (Backend.Scope outer = gpu.scope()) {
            before = gpu.arenaBytesInUse();
            try (Backend.Scope inner = gpu.scope()) {
                gpu.tensor(random(1 << 20), 1 << 20); // 4 MiB of scratch below the kept tensor
                kept = inner.keep(gpu.scale(gpu.tensor(data, 64, 64), 2f));
                view = gpu.reshape(kept, 4096);
            }
            assertTrue(gpu.arenaBytesInUse() - before < 64 << 10, "only the kept tensor stays: " + (gpu.arenaBytesInUse() - before) + " bytes");
            float[] want = new float[data.length];
            for (int i = 0; i < want.length; i++) want[i] = 2f * data[i];
            assertArrayEquals(want, gpu.toHost(kept), 0f);
            assertArrayEquals(want, gpu.toHost(view), 0f, "a view follows the move");
        }
        assertEquals(before, gpu.arenaBytesInUse(), "the outer scope freed the kept tensor too");
    }

    @AfterAll
    static void close() {
        if (gpu != null) gpu.close();
    }

    private float[] random(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) random.nextGaussian();
        return v;
    }

    /** Runs {@code op} on both backends with the same host inputs and compares. */
    private void same(String what, double reduction, Function<Backend, Tensor> op) {
        float[] want = cpu.toHost(op.apply(cpu));
        float[] got = gpu.toHost(op.apply(gpu));
        assertEquals(want.length, got.length, what + ": sizes");
        double scale = 1e-30, worst = 0;
        for (float v : want) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < want.length; i++) {
            assertFalse(Float.isNaN(got[i]), what + ": NaN at " + i);
            worst = Math.max(worst, Math.abs(want[i] - got[i]) / scale);
        }
        double bound = 1e-5 * Math.sqrt(Math.max(1, reduction));
        System.out.printf("[gpu] %-40s max |cuda - cpu| / max|cpu| = %.2e (bound %.1e)%n", what, worst, bound);
        assertTrue(worst <= bound, what + ": relative error " + worst + " over " + bound);
    }

    @Test
    void linearWithBiasAndLora() {
        int m = 1024, k = 320, n = 1280, rank = 16;
        float[] x = random(m * k), w = random(n * k), b = random(n), down = random(rank * k), up = random(n * rank);
        same("linear 1024x1280x320", k, be -> be.linear(be.tensor(x, 1, m, k), be.linearWeights(w, n, k, b)));
        same("linear + 2 LoRA adapters", k + rank, be -> {
            LoraAdapter a = new LoraAdapter(be.linearWeights(down, rank, k, null), be.linearWeights(up, n, rank, null), 0.7f);
            return be.linear(be.tensor(x, 1, m, k), be.linearWeights(w, n, k, b), List.of(a, a));
        });
        same("linear ragged 7x33x5", 5, be -> be.linear(be.tensor(random(7 * 5), 7, 5), be.linearWeights(random(33 * 5), 33, 5, null)));
    }

    @Test
    void convolutions() {
        record Case(int n, int h, int w, int cin, int cout, int k, int stride, Padding pad) {
        }
        List<Case> cases = List.of(
                new Case(1, 32, 32, 320, 320, 3, 1, Padding.same(1)),
                new Case(2, 16, 16, 640, 1280, 3, 1, Padding.same(1)),
                new Case(1, 32, 32, 320, 320, 3, 2, Padding.same(1)),
                new Case(1, 64, 64, 128, 128, 3, 2, Padding.BOTTOM_RIGHT_1),
                new Case(1, 32, 32, 960, 320, 1, 1, Padding.NONE),
                new Case(1, 224, 224, 3, 1024, 14, 14, Padding.NONE),
                new Case(1, 9, 7, 70, 37, 4, 2, Padding.same(1)));
        for (Case c : cases) {
            float[] x = random(c.n() * c.h() * c.w() * c.cin()), w = random(c.cout() * c.cin() * c.k() * c.k()), b = random(c.cout());
            same("conv " + c, (double) c.cin() * c.k() * c.k(), be -> be.conv2d(be.tensor(x, c.n(), c.h(), c.w(), c.cin()),
                    be.convWeights(w, c.cout(), c.cin(), c.k(), c.k(), b), c.stride(), c.pad()));
        }
    }

    @Test
    void normalisations() {
        float[] x = random(2 * 32 * 32 * 320), g = random(320), b = random(320);
        same("groupNorm 32 groups", 32 * 32 * 10, be -> be.groupNorm(be.tensor(x, 2, 32, 32, 320), 32, be.tensor(g, 320), be.tensor(b, 320), 1e-5f, false));
        same("groupNorm + SiLU", 32 * 32 * 10, be -> be.groupNorm(be.tensor(x, 2, 32, 32, 320), 32, be.tensor(g, 320), be.tensor(b, 320), 1e-6f, true));
        float[] y = random(257 * 1024), lg = random(1024), lb = random(1024);
        same("layerNorm 257x1024", 1024, be -> be.layerNorm(be.tensor(y, 1, 257, 1024), be.tensor(lg, 1024), be.tensor(lb, 1024), 1e-5f));
        same("softmax rows", 77, be -> be.softmax(be.tensor(random(40 * 77), 40, 77)));
    }

    @Test
    void attentionAtEveryHeadDim() {
        int[][] cases = {{1024, 1024, 320, 8}, {1024, 256, 320, 8}, {256, 512, 640, 8}, {64, 256, 1280, 8}, {257, 257, 1024, 16}, {1024, 1024, 512, 1}};
        for (int[] c : cases) {
            int lq = c[0], lk = c[1], ch = c[2], heads = c[3];
            float[] q = random(2 * lq * ch), k = random(2 * lk * ch), v = random(2 * lk * ch), mask = new float[2 * lk];
            for (int j = 0; j < lk; j++) mask[j] = j % 4 == 0 ? 0 : 1; // sample 1: every fourth key masked
            // sample 2: every key masked (zeros), the -10000 bias must still give PyTorch's uniform weights
            same("attention q" + lq + " k" + lk + " d" + ch / heads, ch / heads, be -> be.attention(be.tensor(q, 2, lq, ch),
                    be.tensor(k, 2, lk, ch), be.tensor(v, 2, lk, ch), heads, be.tensor(mask, 2, lk)));
        }
        float[] q = random(300 * 320);
        same("attention without mask", 40, be -> be.attention(be.tensor(q, 1, 300, 320), be.tensor(q, 1, 300, 320), be.tensor(q, 1, 300, 320), 8, null));
    }

    @Test
    void elementwiseAndLayout() {
        float[] a = random(2 * 16 * 16 * 640), b = random(2 * 16 * 16 * 640), v = random(2 * 640), h = random(256 * 2560);
        same("add", 1, be -> be.add(be.tensor(a, 2, 16, 16, 640), be.tensor(b, 2, 16, 16, 640)));
        same("axpby", 1, be -> be.axpby(0.3f, be.tensor(a, 2, 16, 16, 640), -1.7f, be.tensor(b, 2, 16, 16, 640)));
        same("scale", 1, be -> be.scale(be.tensor(a, 2, 16, 16, 640), 0.18215f));
        same("silu", 1, be -> be.silu(be.tensor(a, 2, 16, 16, 640)));
        same("gelu", 1, be -> be.gelu(be.tensor(a, 2, 16, 16, 640)));
        same("quickGelu", 1, be -> be.quickGelu(be.tensor(a, 2, 16, 16, 640)));
        same("geglu", 1, be -> be.geglu(be.tensor(h, 256, 2560)));
        same("addPerSample", 1, be -> be.addPerSample(be.tensor(a, 2, 16, 16, 640), be.tensor(v, 2, 640)));
        same("concatChannels", 1, be -> be.concatChannels(be.tensor(a, 2, 16, 16, 640), be.tensor(b, 2, 16, 16, 640)));
        same("sliceChannels", 1, be -> be.sliceChannels(be.tensor(a, 2, 16, 16, 640), 100, 333));
        same("concatDim1", 1, be -> be.concatDim1(List.of(be.tensor(a, 2, 256, 640), be.tensor(b, 2, 256, 640), be.tensor(v, 2, 1, 640))));
        same("concatBatch", 1, be -> be.concatBatch(List.of(be.tensor(a, 2, 256, 640), be.tensor(b, 2, 256, 640))));
        same("reshape", 1, be -> be.reshape(be.tensor(a, 2, 16, 16, 640), 2, 256, 640));
    }

    @Test
    void resampling() {
        float[] x = random(2 * 37 * 53 * 4), img = random(256 * 256 * 3);
        same("upsampleNearest2x", 1, be -> be.upsampleNearest2x(be.tensor(x, 2, 37, 53, 4)));
        same("resizeNearest 37x53 -> 61x90", 1, be -> be.resizeNearest(be.tensor(x, 2, 37, 53, 4), 61, 90));
        same("resizeNearest 37x53 -> 16x16", 1, be -> be.resizeNearest(be.tensor(x, 2, 37, 53, 4), 16, 16));
        same("resizeBilinear 256 -> 224", 1, be -> be.resizeBilinear(be.tensor(img, 1, 256, 256, 3), 224, 224));
        same("resizeBilinear 37x53 -> 100x140", 1, be -> be.resizeBilinear(be.tensor(x, 2, 37, 53, 4), 100, 140));
        same("timestepEmbedding", 1, be -> be.timestepEmbedding(new float[]{1, 500, 999}, 320, true, 0f));
    }

    @Test
    void arenaOverflowSaysWhatToDo() {
        Cuda.Device dev = probe.device().orElseThrow();
        try (DeviceArena small = new DeviceArena(dev.driver(), 1 << 20)) {
            small.allocate(1000);
            assertEquals(1000, small.used());
            CudaException e = assertThrows(CudaException.class, () -> small.allocate(1 << 20));
            assertTrue(e.getMessage().contains("arena of 1 MiB is full"), e.getMessage());
            small.rewind(0);
            assertEquals(0, small.used());
        }
    }
}
