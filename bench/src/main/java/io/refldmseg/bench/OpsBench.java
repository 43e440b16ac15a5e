package io.refldmseg.bench;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * One op family at a time at SD1.5 shapes on the CPU backend: the UNet's 3x3 conv at 32x32x320,
 * the VAE decoder's at 256x256x128 (Winograd), GroupNorm+SiLU on the decoder's largest
 * activation, and key-masked attention with 1024 queries, 8 heads of 40, 256 or 512 keys (1 or 2
 * shots) and 1024 keys (self-attention). The key count is a parameter of the attention state only.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class OpsBench {
    /** Attention inputs for one key count. */
    @State(Scope.Benchmark)
    public static class Keys {
        @Param({"256", "512", "1024"})
        public int keys;

        Tensor q, k, v, mask;

        @Setup
        public void setUp(OpsBench ops) {
            Random r = new Random(2);
            q = ops.rand(r, 1, 1024, 320);
            k = ops.rand(r, 1, keys, 320);
            v = ops.rand(r, 1, keys, 320);
            float[] m = new float[keys];
            for (int i = 0; i < keys; i++) m[i] = i % 5 == 0 ? 0 : 1;
            mask = ops.be.tensor(m, 1, keys);
        }
    }

    final Backend be = new CpuBackend();
    private Tensor unetX, vaeX, gnX, gamma, beta;
    private ConvWeights unetConv, vaeConv;

    @Setup
    public void setUp() {
        Random r = new Random(1);
        unetX = rand(r, 1, 32, 32, 320);
        unetConv = be.convWeights(randArray(r, 320 * 320 * 9), 320, 320, 3, 3, randArray(r, 320));
        vaeX = rand(r, 1, 256, 256, 128);
        vaeConv = be.convWeights(randArray(r, 128 * 128 * 9), 128, 128, 3, 3, randArray(r, 128));
        gnX = vaeX;
        gamma = rand(r, 128);
        beta = rand(r, 128);
    }

    @Benchmark
    public Tensor attentionMasked(Keys a) {
        return be.attention(a.q, a.k, a.v, 8, a.mask);
    }

    @Benchmark
    public Tensor conv3x3Unet32x32x320() {
        return be.conv2d(unetX, unetConv, 1, Padding.same(1));
    }

    @Benchmark
    public Tensor conv3x3Vae256x256x128() {
        return be.conv2d(vaeX, vaeConv, 1, Padding.same(1));
    }

    @Benchmark
    public Tensor groupNormSilu256x256x128() {
        return be.groupNorm(gnX, 32, gamma, beta, 1e-6f, true);
    }

    Tensor rand(Random r, int... shape) {
        return be.tensor(randArray(r, (int) Tensor.numel(shape)), shape);
    }

    private static float[] randArray(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian() * 0.1f;
        return a;
    }
}
