package io.refldmseg.engine.cpu;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.LoraAdapter;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Shapes;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.TimestepEmbedding;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** fp32 backend on the CPU: Vector API kernels, all cores through the engine's own workers ({@link Parallel}). */
public final class CpuBackend implements Backend {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Where the outputs of ops that write every element come from (see {@link BufferPool}). */
    private final BufferPool pool = new BufferPool();
    private static final int L = S.length();
    /** Doubles of the same vector width (half as many lanes), for double-precision statistics. */
    private static final VectorSpecies<Double> D = VectorSpecies.of(double.class, S.vectorShape());

    /** This backend's workers: its ops use {@code threads} cores, whatever other backends in the JVM do. */
    private final Parallel par;

    /** A backend on every core the JVM sees. */
    public CpuBackend() {
        this(cores());
    }

    /**
     * A backend on {@code threads} cores (the calling thread plus {@code threads - 1} workers it
     * owns). Several engines in one JVM: give each cores / engines threads so they do not contend.
     */
    public CpuBackend(int threads) {
        this(threads, DEFAULT_WINOGRAD_MIN_PIXELS);
    }

    /** @param winogradMinPixels smallest image (H x W) for Winograd convolutions; Integer.MAX_VALUE turns it off */
    public CpuBackend(int threads, int winogradMinPixels) {
        this(threads, winogradMinPixels, DEFAULT_WINOGRAD_KEEP_BYTES);
    }

    /**
     * @param winogradKeepBytes the most memory this backend spends on keeping Winograd-transformed
     *                          weights of 3x3 convs that run on many tiles: a conv keeps its U from
     *                          its second such call on while the total stays within this (0: U is
     *                          always made per call; a layer used once never keeps it)
     */
    public CpuBackend(int threads, int winogradMinPixels, long winogradKeepBytes) {
        if (threads < 1 || threads > 4096) throw new IllegalArgumentException("CPU threads must be in 1..4096, got " + threads);
        if (winogradKeepBytes < 0) throw new IllegalArgumentException("winogradKeepBytes must be >= 0, got " + winogradKeepBytes);
        this.par = new Parallel(threads);
        this.winogradMinPixels = winogradMinPixels;
        this.winogradKeepLeft = new AtomicLong(winogradKeepBytes);
        this.winogradKeepBytes = winogradKeepBytes;
    }

    /** The default of {@link #CpuBackend(int, int, long)}'s budget: the U of the full-size UNet's many-tile convs at batch 3 (1.9 GB) and the VAE's (0.6 GB) fit. */
    public static final long DEFAULT_WINOGRAD_KEEP_BYTES = 4L << 30;
    private final AtomicLong winogradKeepLeft;
    private final long winogradKeepBytes;

    /** Bytes of Winograd U kept by this backend's convs so far. */
    long winogradKeptBytes() {
        return winogradKeepBytes - winogradKeepLeft.get();
    }

    /** The cores the JVM sees (what {@link #CpuBackend()} uses). */
    public static int cores() {
        return Runtime.getRuntime().availableProcessors();
    }

    public int threads() {
        return par.threads();
    }

    /** Why the GEMM runs its Vector API kernels instead of the native AVX2 one, or null when the native one runs. */
    public static String nativeKernelUnavailableReason() {
        return NativeGemm.whyNot();
    }

    @Override
    public String name() {
        return "cpu (" + par.threads() + " threads, " + S.vectorBitSize() + "-bit vectors, " + NativeGemm.kernels() + ")";
    }

    /** Stops this backend's workers; its tensors stay readable, its ops fail afterwards. */
    @Override
    public void close() {
        par.close();
    }

    // ---- data ----

    @Override
    public Scope scope() {
        return pool.scope();
    }

    @Override
    public void releaseWorkspace() {
        pool.clear();
    }

    @Override
    public Tensor tensor(float[] data, int... shape) {
        return new CpuTensor(data.clone(), shape);
    }

    @Override
    public float[] toHost(Tensor t) {
        return cpu(t).data.clone();
    }

    @Override
    public Tensor reshape(Tensor t, int... shape) {
        if (Tensor.numel(shape) != t.numel())
            throw new IllegalArgumentException("cannot reshape " + t + " to " + Arrays.toString(shape));
        return new CpuTensor(cpu(t).data, shape);
    }

    private static CpuTensor cpu(Tensor t) {
        if (t instanceof CpuTensor c) return c;
        throw new IllegalArgumentException(t + " does not belong to the CPU backend");
    }

    // ---- weights ----

    private record Linear(Gemm.Packed packed) implements LinearWeights {
        public int inFeatures() {
            return packed.k;
        }

        public int outFeatures() {
            return packed.n;
        }
    }

    /** Conv weight re-laid to [out, kh, kw, in] (the im2col column order for NHWC), then packed. */
    private static final class Conv implements ConvWeights {
        final Gemm.Packed packed;
        final int inChannels, outChannels, kernelHeight, kernelWidth;

        Conv(Gemm.Packed packed, int in, int out, int kh, int kw) {
            this.packed = packed;
            this.inChannels = in;
            this.outChannels = out;
            this.kernelHeight = kh;
            this.kernelWidth = kw;
        }

        public int inChannels() {
            return inChannels;
        }

        public int outChannels() {
            return outChannels;
        }

        public int kernelHeight() {
            return kernelHeight;
        }

        public int kernelWidth() {
            return kernelWidth;
        }

        /** By tiling: many-tiles calls so far, and the U kept. */
        private final int[] manyTileCalls = new int[Winograd.Tiling.values().length];
        private final Gemm.Packed[][] keptU = new Gemm.Packed[Winograd.Tiling.values().length][];

        /**
         * This conv's kept Winograd U of that tiling, made on its second many-tiles call with it if
         * {@code budget} still holds its bytes; null: make it per call.
         */
        synchronized Gemm.Packed[] keptWinograd(Parallel par, AtomicLong budget, Winograd.Tiling tiling) {
            int i = tiling.ordinal();
            if (keptU[i] != null || manyTileCalls[i]++ == 0) return keptU[i];
            long bytes = Winograd.transformedBytes(packed, inChannels, tiling);
            if (budget.addAndGet(-bytes) < 0) {
                budget.addAndGet(bytes);
                return null;
            }
            return keptU[i] = Winograd.transformWeights(par, packed, inChannels, new float[tiling.positions][0], tiling);
        }
    }

    /**
     * Stride-1 3x3 convs on at least this many output pixels use Winograd ({@link Winograd.Tiling}). Measured on
     * the 2-vCPU AVX-512 dev VM: at 16 x 16 it wins (the six 16 x 16 convs 160 -> 132 ms); at 8 x 8
     * it lost while each task streamed the 16 pre-transformed fp32 weight matrices for its few
     * tiles (74 -> 112 ms), and wins since such small images transform the fp16 weights as they
     * read them, once ({@link Winograd#convFewTiles}: 1280-channel 8 x 8 conv 8.4-8.7 -> 7.8 ms,
     * batch 3 20.5 -> 15.3 ms). At 4 x 4 (4 tiles) direct stays faster (3.5 vs 5.1 ms).
     */
    private final int winogradMinPixels;
    public static final int DEFAULT_WINOGRAD_MIN_PIXELS = 64;


    @Override
    public LinearWeights linearWeights(float[] weight, int outFeatures, int inFeatures, float[] bias) {
        return new Linear(new Gemm.Packed(par, weight, outFeatures, inFeatures, bias));
    }

    @Override
    public ConvWeights convWeights(float[] w, int out, int in, int kh, int kw, float[] bias) {
        if ((long) out * in * kh * kw != w.length)
            throw new IllegalArgumentException("conv weight has " + w.length + " values, not " + out + "x" + in + "x" + kh + "x" + kw);
        float[] ohwi = new float[w.length];
        par.forEach(out, o -> {
            for (int i = 0; i < in; i++)
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++)
                        ohwi[((o * kh + y) * kw + x) * in + i] = w[((o * in + i) * kh + y) * kw + x];
        });
        return new Conv(new Gemm.Packed(par, ohwi, out, kh * kw * in, bias), in, out, kh, kw);
    }

    // ---- GEMM-based ops ----

    @Override
    public Tensor linear(Tensor x, LinearWeights w) {
        return linear(x, w, List.of());
    }

    @Override
    public Tensor linear(Tensor x, LinearWeights w, List<LoraAdapter> adapters) {
        return linear(x, w, adapters, null);
    }

    /** The residual starts each tile of the output inside the GEMM: no pass of its own over the output. */
    @Override
    public Tensor linearResidual(Tensor x, LinearWeights w, List<LoraAdapter> adapters, Tensor residual) {
        return linear(x, w, adapters, java.util.Objects.requireNonNull(residual, "residual"));
    }

    private Tensor linear(Tensor x, LinearWeights w, List<LoraAdapter> adapters, Tensor residual) {
        Gemm.Packed p = ((Linear) w).packed;
        CpuTensor in = cpu(x);
        if (x.dim(-1) != p.k) throw new IllegalArgumentException("linear expects " + p.k + " input features, got " + x);
        int m = Math.toIntExact(x.numel() / p.k);
        int[] shape = x.shape();
        shape[shape.length - 1] = p.n;
        if (residual != null && !Arrays.equals(residual.shape(), shape))
            throw new IllegalArgumentException("residual " + residual + " does not match the linear's output " + Arrays.toString(shape));
        float[] y = pool.take(m * p.n);
        Gemm.multiply(par, m, Gemm.dense(in.data, 0, p.k), p, y, 0, p.n, false, residual == null ? null : cpu(residual).data);
        for (LoraAdapter a : adapters) {
            Gemm.Packed down = ((Linear) a.down()).packed, up = ((Linear) a.up()).packed;
            if (down.k != p.k || up.n != p.n)
                throw new IllegalArgumentException("LoRA adapter " + down.k + "->" + up.n + " does not fit linear " + p.k + "->" + p.n);
            float[] t = new float[m * down.n];
            Gemm.multiply(par, m, Gemm.dense(in.data, 0, p.k), down, t, 0, down.n, false);
            for (int i = 0; i < t.length; i++) t[i] *= a.scale();
            Gemm.multiply(par, m, Gemm.dense(t, 0, down.n), up, y, 0, p.n, true);
        }
        return new CpuTensor(y, shape);
    }

    private static final ThreadLocal<float[]> IM2COL = ThreadLocal.withInitial(() -> new float[0]);

    @Override
    public Tensor conv2d(Tensor x, ConvWeights weights, int stride, Padding pad) {
        Conv w = (Conv) weights;
        CpuTensor in = cpu(x);
        int[] outShape = Shapes.conv2d(x, w, stride, pad);
        int n = x.dim(0), h = x.dim(1), wd = x.dim(2), c = x.dim(3), kh = w.kernelHeight, kw = w.kernelWidth, oh = outShape[1], ow = outShape[2];
        int m = n * oh * ow;
        float[] y = pool.take(m * w.outChannels);
        if (kh == 3 && kw == 3 && stride == 1 && pad.equals(Padding.same(1)) && h * wd >= winogradMinPixels) {
            // bias padded past cout: only [0, cout) is read
            Winograd.conv(par, in.data, n, h, wd, c, w.packed, tiling -> w.keptWinograd(par, winogradKeepLeft, tiling), w.outChannels, w.packed.bias, y);
            return new CpuTensor(y, n, oh, ow, w.outChannels);
        }
        Gemm.ARows rows;
        if (kh == 1 && kw == 1 && stride == 1 && pad.equals(Padding.NONE)) {
            rows = Gemm.dense(in.data, 0, c);
        } else {
            float[] src = in.data;
            rows = (m0, mc, k0, kc) -> { // im2col of one K slice: column (ky * kw + kx) * c + ci
                float[] buf = IM2COL.get();
                if (buf.length < mc * kc) {
                    buf = new float[mc * kc];
                    IM2COL.set(buf);
                }
                for (int r = 0; r < mc; r++) {
                    int pix = m0 + r, b = pix / (oh * ow), rem = pix % (oh * ow), oy = rem / ow, ox = rem % ow;
                    for (int col = k0; col < k0 + kc; ) {
                        int tap = col / c, ci = col % c, len = Math.min(c - ci, k0 + kc - col), dst = r * kc + col - k0;
                        int iy = oy * stride - pad.top() + tap / kw, ix = ox * stride - pad.left() + tap % kw;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= wd) Arrays.fill(buf, dst, dst + len, 0f);
                        else System.arraycopy(src, ((b * h + iy) * wd + ix) * c + ci, buf, dst, len);
                        col += len;
                    }
                }
                return new Gemm.Block(buf, 0, kc);
            };
        }
        Gemm.multiply(par, m, rows, w.packed, y, 0, w.outChannels, false);
        return new CpuTensor(y, n, oh, ow, w.outChannels);
    }

    // ---- normalisation ----

    @Override
    public Tensor groupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, boolean silu) {
        float[] xd = cpu(x).data, g = cpu(gamma).data, bt = cpu(beta).data;
        int n = x.dim(0), c = x.dim(-1);
        if (c % groups != 0) throw new IllegalArgumentException(c + " channels do not split into " + groups + " groups");
        int pixels = Math.toIntExact(x.numel() / ((long) n * c)), cpg = c / groups;
        float[] y = pool.take(xd.length);
        double count = (double) pixels * cpg;
        for (int b = 0; b < n; b++) {
            int base = b * pixels * c;
            double[][] moments = channelMoments(xd, base, pixels, c);
            double[] mean = new double[groups], var = new double[groups];
            for (int ch = 0; ch < c; ch++) {
                mean[ch / cpg] += moments[0][ch];
                var[ch / cpg] += moments[1][ch];
            }
            for (int gi = 0; gi < groups; gi++) {
                mean[gi] /= count;
                var[gi] = Math.max(0, var[gi] - mean[gi] * mean[gi] * count); // sum of squared deviations
            }
            float[] scale = new float[c], shift = new float[c];
            for (int ch = 0; ch < c; ch++) {
                int gi = ch / cpg;
                double rstd = 1.0 / Math.sqrt(var[gi] / count + eps);
                scale[ch] = (float) (rstd * g[ch]);
                shift[ch] = (float) (bt[ch] - mean[gi] * rstd * g[ch]);
            }
            applyAffine(xd, y, base, pixels, c, scale, shift, silu);
        }
        return new CpuTensor(y, x.shape());
    }

    /** Pixels of one block of {@link #channelMoments}: their channel vectors' sums stay in registers while the block is read. */
    private static final int MOMENT_BLOCK_PIXELS = 256;

    /**
     * Per-channel sums of x and of x^2 in double, in one pass over x (GroupNorm is memory bound at
     * the VAE's 256 x 256 levels: one read saved is a third of its time). Vectorised over channels,
     * each float vector widened to double vectors; in double, E[x^2] - E[x]^2 loses nothing that
     * matters at fp32 output precision.
     */
    private double[][] channelMoments(float[] x, int base, int pixels, int c) {
        int chunks = Math.max(1, Math.min(par.threads() * 2, pixels / 256));
        double[][] sums = new double[chunks][c], squares = new double[chunks][c];
        int per = (pixels + chunks - 1) / chunks, bound = S.loopBound(c), dl = D.length();
        par.forEach(chunks, ci -> {
            double[] sum = sums[ci], sq = squares[ci];
            int end = Math.min(pixels, ci * per + per);
            // blocks of pixels that stay in L2; in a block, one channel vector at a time with its sums in registers
            // (the same additions in the same order as pixel by pixel, so the same bits)
            for (int p0 = ci * per; p0 < end; p0 += MOMENT_BLOCK_PIXELS) {
                int p1 = Math.min(end, p0 + MOMENT_BLOCK_PIXELS);
                for (int ch = 0; ch < bound; ch += L) { // D has S's shape: a float vector widens into two double vectors
                    DoubleVector s0 = DoubleVector.fromArray(D, sum, ch), s1 = DoubleVector.fromArray(D, sum, ch + dl);
                    DoubleVector q0 = DoubleVector.fromArray(D, sq, ch), q1 = DoubleVector.fromArray(D, sq, ch + dl);
                    for (int p = p0, off = base + p0 * c + ch; p < p1; p++, off += c) {
                        FloatVector v = FloatVector.fromArray(S, x, off);
                        DoubleVector d0 = (DoubleVector) v.convertShape(VectorOperators.F2D, D, 0), d1 = (DoubleVector) v.convertShape(VectorOperators.F2D, D, 1);
                        s0 = s0.add(d0);
                        s1 = s1.add(d1);
                        q0 = d0.fma(d0, q0);
                        q1 = d1.fma(d1, q1);
                    }
                    s0.intoArray(sum, ch);
                    s1.intoArray(sum, ch + dl);
                    q0.intoArray(sq, ch);
                    q1.intoArray(sq, ch + dl);
                }
                for (int p = p0; p < p1; p++)
                    for (int ch = bound, off = base + p * c; ch < c; ch++) {
                        double dv = x[off + ch];
                        sum[ch] += dv;
                        sq[ch] += dv * dv;
                    }
            }
        });
        double[][] total = new double[2][c];
        for (int ci = 0; ci < chunks; ci++)
            for (int ch = 0; ch < c; ch++) {
                total[0][ch] += sums[ci][ch];
                total[1][ch] += squares[ci][ch];
            }
        return total;
    }

    /** y = x * scale[c] + shift[c] (then SiLU), vectorised over channels. */
    private void applyAffine(float[] x, float[] y, int base, int pixels, int c, float[] scale, float[] shift, boolean silu) {
        int bound = S.loopBound(c);
        par.forRange(pixels, 64, (from, to) -> {
            for (int p = from; p < to; p++) {
                int off = base + p * c;
                int ch = 0;
                for (; ch < bound; ch += L) {
                    FloatVector v = FloatVector.fromArray(S, x, off + ch).fma(FloatVector.fromArray(S, scale, ch),
                            FloatVector.fromArray(S, shift, ch));
                    if (silu) v = VectorMath.xSigmoid(v, 1f);
                    v.intoArray(y, off + ch);
                }
                for (; ch < c; ch++) y[off + ch] = x[off + ch] * scale[ch] + shift[ch];
                if (silu && ch > bound) applyVector(y, off + bound, y, off + bound, c - bound, Activation.SILU, 0f);
            }
        });
    }

    @Override
    public Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps) {
        float[] xd = cpu(x).data, g = cpu(gamma).data, b = cpu(beta).data;
        int c = x.dim(-1), rows = Math.toIntExact(x.numel() / c), bound = S.loopBound(c), dl = D.length();
        float[] y = pool.take(xd.length);
        par.forRange(rows, 16, (from, to) -> {
            for (int r = from; r < to; r++) {
                int off = r * c, i = 0;
                // row mean and variance in double, one vectorised pass (sum and sum of squares)
                DoubleVector sum = DoubleVector.zero(D), sq = DoubleVector.zero(D);
                for (; i < bound; i += L) {
                    FloatVector v = FloatVector.fromArray(S, xd, off + i);
                    for (int part = 0; part < L / dl; part++) {
                        DoubleVector d = (DoubleVector) v.convertShape(VectorOperators.F2D, D, part);
                        sum = sum.add(d);
                        sq = d.fma(d, sq);
                    }
                }
                double s1 = sum.reduceLanes(VectorOperators.ADD), s2 = sq.reduceLanes(VectorOperators.ADD);
                for (; i < c; i++) {
                    s1 += xd[off + i];
                    s2 += (double) xd[off + i] * xd[off + i];
                }
                double mean = s1 / c, rstd = 1.0 / Math.sqrt(Math.max(0, s2 / c - mean * mean) + eps);
                float m = (float) mean, rs = (float) rstd;
                i = 0;
                for (; i < bound; i += L)
                    FloatVector.fromArray(S, xd, off + i).sub(m).mul(rs)
                            .fma(FloatVector.fromArray(S, g, i), FloatVector.fromArray(S, b, i)).intoArray(y, off + i);
                for (; i < c; i++) y[off + i] = (xd[off + i] - m) * rs * g[i] + b[i];
            }
        });
        return new CpuTensor(y, x.shape());
    }

    // ---- attention ----

    @Override
    public Tensor attention(Tensor q, Tensor k, Tensor v, int heads, Tensor keyMask) {
        Shapes.attention(q, k, v, heads, keyMask);
        int b = q.dim(0), lq = q.dim(1), c = q.dim(2), lk = k.dim(1);
        float[] out = pool.take(b * lq * c);
        CpuAttention.run(par, cpu(q).data, cpu(k).data, cpu(v).data, b, lq, lk, c, heads, keyMask == null ? null : cpu(keyMask).data, out);
        return new CpuTensor(out, b, lq, c);
    }

    @Override
    public Tensor attentionScores(Tensor q, Tensor k, int heads, Tensor bias) {
        int[] biasShape = io.refldmseg.engine.UnfusedAttention.checkScores(q, k, heads, bias);
        int b = q.dim(0), lq = q.dim(1), c = q.dim(2), lk = k.dim(1);
        float[] out = new float[Math.toIntExact((long) b * heads * lq * lk)];
        float[] qd = cpu(q).data, kd = cpu(k).data, bd = bias == null ? null : cpu(bias).data;
        par.forRange(b * heads, 1, (from, to) -> io.refldmseg.engine.UnfusedAttention.scores(qd, kd, lq, lk, c, heads, bd, biasShape, out, from, to));
        return new CpuTensor(out, b, heads, lq, lk);
    }

    @Override
    public Tensor attend(Tensor p, Tensor v, int heads) {
        io.refldmseg.engine.UnfusedAttention.checkAttend(p, v, heads);
        int b = v.dim(0), lq = p.dim(2), lk = v.dim(1), c = v.dim(2);
        float[] out = new float[Math.toIntExact((long) b * lq * c)];
        float[] pd = cpu(p).data, vd = cpu(v).data;
        par.forRange(b * heads, 1, (from, to) -> io.refldmseg.engine.UnfusedAttention.attend(pd, vd, lq, lk, c, heads, out, from, to));
        return new CpuTensor(out, b, lq, c);
    }

    @Override
    public Tensor softmax(Tensor x) {
        float[] xd = cpu(x).data;
        int c = x.dim(-1), rows = Math.toIntExact(x.numel() / c), pad = (c + L - 1) / L * L;
        float[] y = new float[xd.length];
        par.forRange(rows, 16, (from, to) -> {
            float[] row = new float[pad];
            for (int r = from; r < to; r++) {
                System.arraycopy(xd, r * c, row, 0, c);
                Arrays.fill(row, c, pad, Float.NEGATIVE_INFINITY);
                CpuAttention.softmaxInPlace(row, 0, pad);
                System.arraycopy(row, 0, y, r * c, c);
            }
        });
        return new CpuTensor(y, x.shape());
    }

    // ---- elementwise ----

    /**
     * Applies a vector function to every element; the ragged tail goes through the same function
     * on a padded vector, so every element sees exactly the same arithmetic.
     */
    private Tensor mapVector(Tensor x, Activation op, float arg) {
        float[] xd = cpu(x).data;
        float[] y = pool.take(xd.length);
        par.forRange(xd.length, 4096, (from, to) -> applyVector(xd, from, y, from, to - from, op, arg));
        return new CpuTensor(y, x.shape());
    }

    private static void applyVector(float[] x, int xOff, float[] y, int yOff, int n, Activation op, float arg) {
        int body = n - n % L;
        applyWhole(x, xOff, y, yOff, body, op, arg);
        if (body < n) {
            float[] tail = new float[L];
            System.arraycopy(x, xOff + body, tail, 0, n - body);
            applyWhole(tail, 0, tail, 0, L, op, arg);
            System.arraycopy(tail, 0, y, yOff + body, n - body);
        }
    }

    /** The element-wise vector functions. */
    private enum Activation { SILU, GELU, QUICK_GELU, SCALE }

    /**
     * {@code n} (a multiple of L) elements through one function. Each function has its own loop
     * method: one loop over a switch of functions stops being inlined once several functions are
     * hot (the vectors are then heap objects: silu after gelu ran 20-30x slower).
     */
    private static void applyWhole(float[] x, int xOff, float[] y, int yOff, int n, Activation op, float arg) {
        switch (op) {
            case SILU -> silu(x, xOff, y, yOff, n);
            case GELU -> gelu(x, xOff, y, yOff, n);
            case QUICK_GELU -> quickGelu(x, xOff, y, yOff, n);
            case SCALE -> scale(x, xOff, y, yOff, n, arg);
        }
    }

    private static void silu(float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i += L) VectorMath.xSigmoid(FloatVector.fromArray(S, x, xOff + i), 1f).intoArray(y, yOff + i);
    }

    private static void gelu(float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i += L) VectorMath.gelu(FloatVector.fromArray(S, x, xOff + i)).intoArray(y, yOff + i);
    }

    private static void quickGelu(float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i += L) VectorMath.xSigmoid(FloatVector.fromArray(S, x, xOff + i), 1.702f).intoArray(y, yOff + i);
    }

    private static void scale(float[] x, int xOff, float[] y, int yOff, int n, float s) {
        for (int i = 0; i < n; i += L) FloatVector.fromArray(S, x, xOff + i).mul(s).intoArray(y, yOff + i);
    }

    @Override
    public Tensor silu(Tensor x) {
        return mapVector(x, Activation.SILU, 0f);
    }

    @Override
    public Tensor gelu(Tensor x) {
        return mapVector(x, Activation.GELU, 0f);
    }

    @Override
    public Tensor quickGelu(Tensor x) {
        return mapVector(x, Activation.QUICK_GELU, 0f);
    }

    @Override
    public Tensor geglu(Tensor x) {
        float[] xd = cpu(x).data;
        int c2 = x.dim(-1), h = c2 / 2, rows = Math.toIntExact(x.numel() / c2);
        if (c2 % 2 != 0) throw new IllegalArgumentException("geglu needs an even last dimension, got " + x);
        float[] y = pool.take(rows * h);
        par.forRange(rows, 16, (from, to) -> {
            for (int r = from; r < to; r++) {
                applyVector(xd, r * c2 + h, y, r * h, h, Activation.GELU, 0f); // gelu(gate)
                int i = 0;
                for (int bound = S.loopBound(h); i < bound; i += L)
                    FloatVector.fromArray(S, xd, r * c2 + i).mul(FloatVector.fromArray(S, y, r * h + i)).intoArray(y, r * h + i);
                for (; i < h; i++) y[r * h + i] *= xd[r * c2 + i];
            }
        });
        int[] shape = x.shape();
        shape[shape.length - 1] = h;
        return new CpuTensor(y, shape);
    }

    @Override
    public Tensor add(Tensor a, Tensor b) {
        return axpby(1f, a, 1f, b);
    }

    @Override
    public Tensor axpby(float alpha, Tensor a, float beta, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) throw new IllegalArgumentException("shapes differ: " + a + " and " + b);
        float[] ad = cpu(a).data, bd = cpu(b).data;
        float[] y = pool.take(ad.length);
        par.forRange(ad.length, 8192, (from, to) -> {
            if (alpha == 1f && beta == 1f) for (int i = from; i < to; i++) y[i] = ad[i] + bd[i];
            else for (int i = from; i < to; i++) y[i] = alpha * ad[i] + beta * bd[i];
        });
        return new CpuTensor(y, a.shape());
    }

    @Override
    public Tensor addPerSample(Tensor x, Tensor v) {
        int n = x.dim(0), c = x.dim(-1);
        if (v.rank() != 2 || v.dim(0) != n || v.dim(1) != c) throw new IllegalArgumentException("cannot add " + v + " to " + x);
        float[] xd = cpu(x).data, vd = cpu(v).data;
        int pixels = Math.toIntExact(x.numel() / ((long) n * c));
        float[] y = pool.take(xd.length);
        par.forRange(n * pixels, 256, (from, to) -> {
            for (int p = from; p < to; p++) {
                int off = p * c, voff = (p / pixels) * c;
                for (int ch = 0; ch < c; ch++) y[off + ch] = xd[off + ch] + vd[voff + ch];
            }
        });
        return new CpuTensor(y, x.shape());
    }

    @Override
    public Tensor scale(Tensor x, float s) {
        return mapVector(x, Activation.SCALE, s);
    }

    @Override
    public Tensor concatChannels(Tensor a, Tensor b) {
        int ca = a.dim(-1), cb = b.dim(-1);
        if (a.numel() / ca != b.numel() / cb) throw new IllegalArgumentException("cannot concat channels of " + a + " and " + b);
        int rows = Math.toIntExact(a.numel() / ca), c = ca + cb;
        float[] ad = cpu(a).data, bd = cpu(b).data, y = pool.take(rows * c);
        for (int r = 0; r < rows; r++) {
            System.arraycopy(ad, r * ca, y, r * c, ca);
            System.arraycopy(bd, r * cb, y, r * c + ca, cb);
        }
        int[] shape = a.shape();
        shape[shape.length - 1] = c;
        return new CpuTensor(y, shape);
    }

    @Override
    public Tensor sliceChannels(Tensor x, int from, int count) {
        int c = x.dim(-1), rows = Math.toIntExact(x.numel() / c);
        if (from < 0 || count < 0 || from + count > c) throw new IllegalArgumentException("channels [" + from + ", " + (from + count) + ") of " + x);
        float[] xd = cpu(x).data, y = new float[rows * count];
        for (int r = 0; r < rows; r++) System.arraycopy(xd, r * c + from, y, r * count, count);
        int[] shape = x.shape();
        shape[shape.length - 1] = count;
        return new CpuTensor(y, shape);
    }

    @Override
    public Tensor concatDim1(List<Tensor> parts) {
        int[] shape = Shapes.concatDim1(parts);
        int n = shape[0];
        float[] y = new float[Math.toIntExact(Tensor.numel(shape))];
        int at = 0;
        for (int b = 0; b < n; b++) {
            for (Tensor t : parts) {
                int len = Math.toIntExact(t.numel() / n);
                System.arraycopy(cpu(t).data, b * len, y, at, len);
                at += len;
            }
        }
        return new CpuTensor(y, shape);
    }

    @Override
    public Tensor concatBatch(List<Tensor> parts) {
        int[] shape = Shapes.concatBatch(parts);
        float[] y = new float[Math.toIntExact(Tensor.numel(shape))];
        int at = 0;
        for (Tensor t : parts) {
            System.arraycopy(cpu(t).data, 0, y, at, (int) t.numel());
            at += (int) t.numel();
        }
        return new CpuTensor(y, shape);
    }

    @Override
    public Tensor sliceBatch(Tensor x, int from, int count) {
        int[] shape = Shapes.sliceBatch(x, from, count);
        int row = Math.toIntExact(x.numel() / x.dim(0));
        float[] y = new float[row * count];
        System.arraycopy(cpu(x).data, from * row, y, 0, y.length);
        return new CpuTensor(y, shape);
    }

    @Override
    public Tensor crop(Tensor x, int h, int w) {
        int[] shape = Shapes.crop(x, h, w);
        int n = x.dim(0), hh = x.dim(1), ww = x.dim(2), c = x.dim(3);
        float[] xd = cpu(x).data, y = new float[n * h * w * c];
        for (int b = 0; b < n; b++)
            for (int r = 0; r < h; r++) System.arraycopy(xd, ((b * hh + r) * ww) * c, y, ((b * h + r) * w) * c, w * c);
        return new CpuTensor(y, shape);
    }

    // ---- resampling ----

    @Override
    public Tensor upsampleNearest2x(Tensor x) {
        int n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
        float[] xd = cpu(x).data, y = pool.take(n * 4 * h * w * c);
        par.forRange(n * 2 * h, 8, (from, to) -> {
            for (int row = from; row < to; row++) {
                int b = row / (2 * h), oy = row % (2 * h);
                for (int ox = 0; ox < 2 * w; ox++)
                    System.arraycopy(xd, ((b * h + oy / 2) * w + ox / 2) * c, y, ((b * 2 * h + oy) * 2 * w + ox) * c, c);
            }
        });
        return new CpuTensor(y, n, 2 * h, 2 * w, c);
    }

    @Override
    public Tensor resizeBilinear(Tensor x, int outH, int outW) {
        int n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
        float[] xd = cpu(x).data, y = new float[n * outH * outW * c];
        float sh = (float) h / outH, sw = (float) w / outW;
        par.forRange(n * outH, 4, (from, to) -> {
            for (int row = from; row < to; row++) {
                int b = row / outH, oy = row % outH;
                float fy = Math.max(0f, (oy + 0.5f) * sh - 0.5f);
                int y0 = (int) fy, y1 = Math.min(y0 + 1, h - 1);
                float ly = fy - y0;
                for (int ox = 0; ox < outW; ox++) {
                    float fx = Math.max(0f, (ox + 0.5f) * sw - 0.5f);
                    int x0 = (int) fx, x1 = Math.min(x0 + 1, w - 1);
                    float lx = fx - x0;
                    int p00 = ((b * h + y0) * w + x0) * c, p01 = ((b * h + y0) * w + x1) * c;
                    int p10 = ((b * h + y1) * w + x0) * c, p11 = ((b * h + y1) * w + x1) * c;
                    int o = ((b * outH + oy) * outW + ox) * c;
                    for (int ch = 0; ch < c; ch++)
                        y[o + ch] = (1 - ly) * ((1 - lx) * xd[p00 + ch] + lx * xd[p01 + ch])
                                + ly * ((1 - lx) * xd[p10 + ch] + lx * xd[p11 + ch]);
                }
            }
        });
        return new CpuTensor(y, n, outH, outW, c);
    }

    @Override
    public Tensor resizeNearest(Tensor x, int outH, int outW) {
        int n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
        float[] xd = cpu(x).data, y = new float[n * outH * outW * c];
        for (int b = 0; b < n; b++)
            for (int oy = 0; oy < outH; oy++)
                for (int ox = 0; ox < outW; ox++)
                    System.arraycopy(xd, ((b * h + nearestIndex(oy, h, outH)) * w + nearestIndex(ox, w, outW)) * c,
                            y, ((b * outH + oy) * outW + ox) * c, c);
        return new CpuTensor(y, n, outH, outW, c);
    }

    /** PyTorch legacy nearest: floor(dst * (float) in / out), clamped. */
    public static int nearestIndex(int dst, int in, int out) {
        float scale = (float) in / out;
        return Math.min((int) Math.floor(dst * scale), in - 1);
    }

    @Override
    public Tensor timestepEmbedding(float[] timesteps, int dim, boolean flipSinToCos, float shift) {
        float[] y = TimestepEmbedding.sinusoidal(timesteps, dim, flipSinToCos, shift);
        return new CpuTensor(y, timesteps.length, dim);
    }
}
