package io.refldmseg.bench;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * sgemm C = A B^T at the shapes that dominate Ref LDM-Seg (M = tokens, N = out channels, K = Cin
 * or Cin x 9 for 3x3 convs; the last three are the vision tower's q/k/v/out, c_fc and c_proj at 257
 * tokens): ours (packed Vector API kernel) against OpenBLAS's cblas_sgemm on the same data, both on
 * {@code threads} threads (0: every core).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class SgemmBench {
    @Param({"1024x320x2880", "256x640x5760", "64x1280x11520", "1024x320x320", "1024x2560x320", "4096x128x1152",
            "257x1024x1024", "257x4096x1024", "257x1024x4096"})
    public String shape;

    /** Threads of both ours and OpenBLAS; 0 = every core. */
    @Param({"0"})
    public int threads;

    int m, n, k;
    private Backend be;
    private Tensor x;
    private LinearWeights w;
    private OpenBlas blas;
    private Arena arena;
    private MemorySegment a, b, c;

    @Setup(Level.Trial)
    public void setUp() {
        String[] p = shape.split("x");
        m = Integer.parseInt(p[0]);
        n = Integer.parseInt(p[1]);
        k = Integer.parseInt(p[2]);
        int t = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        be = new CpuBackend(t);
        Random r = new Random(1);
        float[] xa = new float[m * k], wa = new float[n * k];
        for (int i = 0; i < xa.length; i++) xa[i] = r.nextFloat() - 0.5f;
        for (int i = 0; i < wa.length; i++) wa[i] = r.nextFloat() - 0.5f;
        x = be.tensor(xa, m, k);
        w = be.linearWeights(wa, n, k, null);
        blas = OpenBlas.find().orElse(null);
        if (blas != null) {
            blas.threads(t);
            arena = Arena.ofShared();
            a = arena.allocate((long) m * k * 4, 64);
            b = arena.allocate((long) n * k * 4, 64);
            c = arena.allocate((long) m * n * 4, 64);
            MemorySegment.copy(xa, 0, a, ValueLayout.JAVA_FLOAT, 0, xa.length);
            MemorySegment.copy(wa, 0, b, ValueLayout.JAVA_FLOAT, 0, wa.length);
        }
    }

    /**
     * One product into a workspace output, as the networks run it: the output array goes back to
     * the backend's pool when the scope closes, so a call costs the GEMM and not a fresh M x N
     * array (zeroed by the JVM) as well; OpenBLAS likewise writes into one preallocated C.
     */
    @Benchmark
    public Tensor ours() {
        try (Backend.Scope scope = be.scope()) {
            return be.linear(x, w);
        }
    }

    @Benchmark
    public MemorySegment openblas() {
        if (blas == null) throw new IllegalStateException("OpenBLAS not installed");
        blas.sgemmABt(m, n, k, a, b, c);
        return c;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (arena != null) arena.close();
        be.close();
    }
}
