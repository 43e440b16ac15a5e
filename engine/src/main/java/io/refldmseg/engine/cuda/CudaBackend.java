package io.refldmseg.engine.cuda;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.LoraAdapter;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Shapes;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.TimestepEmbedding;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@link Backend} on an NVIDIA GPU through the driver API, fp32 throughout: the exactness
 * mode that every op is checked in against the CPU backend. Weights are uploaded once into their
 * own allocations; activations are slices of one {@link DeviceArena}, freed when the {@link
 * #scope()} they were made in closes (the pipeline opens one per request and per denoising step). Launches go to the default stream in op order, so
 * ops are ordered without explicit syncs; {@link #toHost} waits for them.
 */
public final class CudaBackend implements Backend, AutoCloseable {
    private static final int THREADS = 256;
    private final CudaDriver cu;
    private final String deviceName;
    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new HashMap<>();
    private final DeviceArena activations;
    private final List<Long> weightAllocations = new ArrayList<>();

    public CudaBackend(Cuda.Device device, long arenaBytes) {
        this.cu = device.driver();
        this.deviceName = device.name();
        cu.usePrimaryContext(device.device());
        this.module = cu.loadModule(device.fatbin());
        this.activations = new DeviceArena(cu, arenaBytes);
    }

    @Override
    public String name() {
        return "cuda (" + deviceName + ", fp32)";
    }

    /**
     * A scope over the activation arena: closing it rewinds the arena to where the scope began, so
     * every activation made inside is freed; kept tensors are first moved down to the start of the
     * freed space (through a staging copy above the arena's top, since old and new places may
     * overlap) and their views follow.
     */
    @Override
    public Scope scope() {
        long mark = activations.used();
        List<CudaTensor> kept = new ArrayList<>();
        return new Scope() {
            @Override
            public <T extends Tensor> T keep(T t) {
                kept.add(dev(t));
                return t;
            }

            @Override
            public void close() {
                if (activations.used() < mark) throw new IllegalStateException("CUDA scopes closed out of order");
                long from = activations.address(mark), to = activations.address(activations.used());
                Map<Long, CudaTensor> byAddress = new java.util.LinkedHashMap<>(); // views of one tensor move once
                for (CudaTensor t : kept) if (t.ptr() >= from && t.ptr() < to) byAddress.putIfAbsent(t.ptr(), t);
                List<CudaTensor> moving = List.copyOf(byAddress.values());
                long[] staged = new long[moving.size()];
                for (int i = 0; i < staged.length; i++) staged[i] = copy(moving.get(i).ptr(), moving.get(i).numel());
                activations.rewind(mark);
                long[] target = new long[staged.length];
                for (int i = 0; i < staged.length; i++) target[i] = activations.allocate(moving.get(i).numel() * Float.BYTES);
                long end = activations.used();
                // the staging copies sit above every target: copy them down, then drop the staging space
                for (int i = 0; i < staged.length; i++) {
                    copy(staged[i], target[i], moving.get(i).numel());
                    moving.get(i).move(target[i]);
                }
                activations.rewind(end);
            }
        };
    }

    /** A fresh arena copy of {@code n} floats at {@code src}; returns its address. */
    private long copy(long src, long n) {
        long dst = activations.allocate(n * Float.BYTES);
        copy(src, dst, n);
        return dst;
    }

    private void copy(long src, long dst, long n) {
        elementwise("copy_rows_f32", n, src, 0L, 0L, dst, 0L, 0L, 1L, n);
    }

    /** Arena bytes in use now. */
    public long arenaBytesInUse() {
        return activations.used();
    }

    /** The most arena bytes in use at once since the backend was made. */
    public long peakActivationBytes() {
        return activations.peak();
    }

    @Override
    public void close() {
        cu.synchronize();
        for (long p : weightAllocations) cu.free(p);
        weightAllocations.clear();
        activations.close();
    }

    // ---- memory ----

    private CudaTensor empty(int... shape) {
        return new CudaTensor(activations.allocate(Tensor.numel(shape) * Float.BYTES), shape);
    }

    private static CudaTensor dev(Tensor t) {
        if (t instanceof CudaTensor c) return c;
        throw new IllegalArgumentException("tensor " + t + " does not live on the CUDA backend");
    }

    private void upload(long ptr, float[] data) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment staging = a.allocate((long) data.length * Float.BYTES, 64);
            MemorySegment.copy(data, 0, staging, ValueLayout.JAVA_FLOAT, 0, data.length);
            cu.copyToDevice(ptr, staging);
        }
    }

    private long persistent(float[] data) {
        long p = cu.malloc((long) data.length * Float.BYTES);
        weightAllocations.add(p);
        upload(p, data);
        return p;
    }

    @Override
    public Tensor tensor(float[] data, int... shape) {
        if (data.length != Tensor.numel(shape))
            throw new IllegalArgumentException(data.length + " values do not fill shape " + Arrays.toString(shape));
        CudaTensor t = empty(shape);
        upload(t.ptr(), data);
        return t;
    }

    @Override
    public float[] toHost(Tensor t) {
        CudaTensor d = dev(t);
        int n = Math.toIntExact(t.numel());
        float[] out = new float[n];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment staging = a.allocate((long) n * Float.BYTES, 64);
            cu.copyToHost(staging, d.ptr()); // synchronous: waits for the ops before it
            MemorySegment.copy(staging, ValueLayout.JAVA_FLOAT, 0, out, 0, n);
        }
        return out;
    }

    @Override
    public Tensor reshape(Tensor t, int... shape) {
        if (Tensor.numel(shape) != t.numel()) throw new IllegalArgumentException("cannot reshape " + t + " to " + Arrays.toString(shape));
        return dev(t).view(shape);
    }

    // ---- launches ----

    private MemorySegment fn(String name) {
        return functions.computeIfAbsent(name, n -> cu.function(module, n));
    }

    /** A grid-stride kernel over n elements. */
    private void elementwise(String kernel, long n, Object... args) {
        if (n == 0) return;
        int blocks = (int) Math.min((n + THREADS - 1) / THREADS, 1 << 16);
        cu.launch(fn(kernel), blocks, THREADS, 0, args);
    }

    private void copyRows(CudaTensor src, long srcStride, long srcOff, CudaTensor dst, long dstStride, long dstOff, long rows, long count) {
        elementwise("copy_rows_f32", rows * count, src.ptr(), srcStride, srcOff, dst.ptr(), dstStride, dstOff, rows, count);
    }

    // ---- weights ----

    private record Linear(long weight, long bias, int inFeatures, int outFeatures) implements LinearWeights {
    }

    private record Conv(long weight, long bias, int inChannels, int outChannels, int kernelHeight, int kernelWidth) implements ConvWeights {
    }

    @Override
    public LinearWeights linearWeights(float[] weight, int outFeatures, int inFeatures, float[] bias) {
        if ((long) outFeatures * inFeatures != weight.length)
            throw new IllegalArgumentException("weight has " + weight.length + " values, not " + outFeatures + "x" + inFeatures);
        if (bias != null && bias.length != outFeatures) throw new IllegalArgumentException("bias has " + bias.length + " values, not " + outFeatures);
        return new Linear(persistent(weight), bias == null ? 0L : persistent(bias), inFeatures, outFeatures);
    }

    /** Uploads the weight reordered from PyTorch's [out, in, kh, kw] to [out, kh, kw, in], the implicit GEMM's K order. */
    @Override
    public ConvWeights convWeights(float[] weight, int outChannels, int inChannels, int kh, int kw, float[] bias) {
        if ((long) outChannels * inChannels * kh * kw != weight.length)
            throw new IllegalArgumentException("conv weight has " + weight.length + " values, not " + outChannels + "x" + inChannels + "x" + kh + "x" + kw);
        if (bias != null && bias.length != outChannels) throw new IllegalArgumentException("bias has " + bias.length + " values, not " + outChannels);
        float[] ohwi = new float[weight.length];
        for (int o = 0; o < outChannels; o++)
            for (int i = 0; i < inChannels; i++)
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++)
                        ohwi[((o * kh + y) * kw + x) * inChannels + i] = weight[((o * inChannels + i) * kh + y) * kw + x];
        return new Conv(persistent(ohwi), bias == null ? 0L : persistent(bias), inChannels, outChannels, kh, kw);
    }

    // ---- ops ----

    @Override
    public Tensor linear(Tensor x, LinearWeights w) {
        return linear(x, w, List.of());
    }

    @Override
    public Tensor linear(Tensor x, LinearWeights weights, List<LoraAdapter> adapters) {
        Linear w = (Linear) weights;
        if (x.dim(-1) != w.inFeatures()) throw new IllegalArgumentException("linear expects " + w.inFeatures() + " input features, got " + x);
        int m = Math.toIntExact(x.numel() / w.inFeatures());
        int[] shape = x.shape();
        shape[shape.length - 1] = w.outFeatures();
        CudaTensor y = empty(shape);
        gemm(dev(x).ptr(), w.weight(), w.bias(), y.ptr(), m, w.outFeatures(), w.inFeatures(), false);
        for (LoraAdapter a : adapters) {
            Linear down = (Linear) a.down(), up = (Linear) a.up();
            if (down.inFeatures() != w.inFeatures() || up.outFeatures() != w.outFeatures())
                throw new IllegalArgumentException("LoRA adapter " + down.inFeatures() + "->" + up.outFeatures() + " does not fit linear "
                        + w.inFeatures() + "->" + w.outFeatures());
            CudaTensor t = empty(m, down.outFeatures());
            gemm(dev(x).ptr(), down.weight(), 0L, t.ptr(), m, down.outFeatures(), down.inFeatures(), false);
            elementwise("map_f32", t.numel(), t.ptr(), t.ptr(), t.numel(), 3, a.scale());
            gemm(t.ptr(), up.weight(), 0L, y.ptr(), m, up.outFeatures(), up.inFeatures(), true);
        }
        return y;
    }

    private void gemm(long a, long w, long bias, long c, int m, int n, int k, boolean accumulate) {
        if (m == 0) return;
        cu.launchGrid(fn("linear_f32"), (n + 63) / 64, (m + 63) / 64, THREADS, 0, a, w, bias, c, m, n, k, accumulate ? 1 : 0);
    }

    @Override
    public Tensor conv2d(Tensor x, ConvWeights weights, int stride, Padding pad) {
        Conv w = (Conv) weights;
        CudaTensor y = empty(Shapes.conv2d(x, w, stride, pad));
        int n = x.dim(0), h = x.dim(1), wd = x.dim(2), kh = w.kernelHeight(), kw = w.kernelWidth(), oh = y.dim(1), ow = y.dim(2);
        int m = n * oh * ow;
        cu.launchGrid(fn("conv2d_f32"), (w.outChannels() + 63) / 64, (m + 63) / 64, THREADS, 0, dev(x).ptr(), w.weight(), w.bias(), y.ptr(),
                n, h, wd, w.inChannels(), oh, ow, w.outChannels(), kh, kw, stride, pad.top(), pad.left());
        return y;
    }

    @Override
    public Tensor groupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, boolean silu) {
        int n = x.dim(0), c = x.dim(-1);
        if (c % groups != 0) throw new IllegalArgumentException(c + " channels do not split into " + groups + " groups");
        int pixels = Math.toIntExact(x.numel() / ((long) n * c));
        CudaTensor y = empty(x.shape());
        cu.launch(fn("group_norm_f32"), n * groups, THREADS, 0, dev(x).ptr(), dev(gamma).ptr(), dev(beta).ptr(), y.ptr(), pixels, c, groups, eps, silu ? 1 : 0);
        return y;
    }

    @Override
    public Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps) {
        int c = x.dim(-1), rows = Math.toIntExact(x.numel() / c);
        CudaTensor y = empty(x.shape());
        if (rows > 0) cu.launch(fn("layer_norm_f32"), rows, THREADS, 0, dev(x).ptr(), dev(gamma).ptr(), dev(beta).ptr(), y.ptr(), c, eps);
        return y;
    }

    @Override
    public Tensor attention(Tensor q, Tensor k, Tensor v, int heads, Tensor keyMask) {
        Shapes.attention(q, k, v, heads, keyMask);
        int b = q.dim(0), lq = q.dim(1), c = q.dim(2), lk = k.dim(1), d = c / heads;
        if (d > 512) throw new IllegalArgumentException("attention head dim " + d + " is over the CUDA kernel's 512");
        CudaTensor out = empty(b, lq, c);
        long warps = (long) b * heads * lq;
        int blocks = Math.toIntExact((warps * 32 + THREADS - 1) / THREADS);
        if (warps > 0) cu.launch(fn("attention_f32"), blocks, THREADS, 0, dev(q).ptr(), dev(k).ptr(), dev(v).ptr(),
                keyMask == null ? 0L : dev(keyMask).ptr(), out.ptr(), b, lq, lk, heads, d, (float) (1.0 / Math.sqrt(d)));
        return out;
    }

    @Override
    public Tensor softmax(Tensor x) {
        int c = x.dim(-1), rows = Math.toIntExact(x.numel() / c);
        CudaTensor y = empty(x.shape());
        if (rows > 0) cu.launch(fn("softmax_rows_f32"), rows, THREADS, 0, dev(x).ptr(), y.ptr(), c);
        return y;
    }

    private Tensor map(Tensor x, int op, float arg) {
        CudaTensor y = empty(x.shape());
        elementwise("map_f32", x.numel(), dev(x).ptr(), y.ptr(), x.numel(), op, arg);
        return y;
    }

    @Override
    public Tensor silu(Tensor x) {
        return map(x, 0, 0f);
    }

    @Override
    public Tensor gelu(Tensor x) {
        return map(x, 1, 0f);
    }

    @Override
    public Tensor quickGelu(Tensor x) {
        return map(x, 2, 0f);
    }

    @Override
    public Tensor scale(Tensor x, float s) {
        return map(x, 3, s);
    }

    @Override
    public Tensor geglu(Tensor x) {
        int c2 = x.dim(-1), h = c2 / 2;
        if (c2 % 2 != 0) throw new IllegalArgumentException("geglu needs an even last dimension, got " + x);
        long rows = x.numel() / c2;
        int[] shape = x.shape();
        shape[shape.length - 1] = h;
        CudaTensor y = empty(shape);
        elementwise("geglu_f32", rows * h, dev(x).ptr(), y.ptr(), rows, h);
        return y;
    }

    @Override
    public Tensor add(Tensor a, Tensor b) {
        sameShape(a, b);
        CudaTensor y = empty(a.shape());
        elementwise("add_f32", a.numel(), dev(a).ptr(), dev(b).ptr(), y.ptr(), a.numel());
        return y;
    }

    @Override
    public Tensor axpby(float alpha, Tensor a, float beta, Tensor b) {
        sameShape(a, b);
        CudaTensor y = empty(a.shape());
        elementwise("axpby_f32", a.numel(), alpha, dev(a).ptr(), beta, dev(b).ptr(), y.ptr(), a.numel());
        return y;
    }

    private static void sameShape(Tensor a, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) throw new IllegalArgumentException("shapes differ: " + a + " and " + b);
    }

    @Override
    public Tensor addPerSample(Tensor x, Tensor v) {
        int n = x.dim(0), c = x.dim(-1);
        if (v.rank() != 2 || v.dim(0) != n || v.dim(1) != c) throw new IllegalArgumentException("cannot add " + v + " to " + x);
        long pixels = x.numel() / ((long) n * c);
        CudaTensor y = empty(x.shape());
        elementwise("add_per_sample_f32", x.numel(), dev(x).ptr(), dev(v).ptr(), y.ptr(), pixels, c, x.numel());
        return y;
    }

    @Override
    public Tensor concatChannels(Tensor a, Tensor b) {
        int ca = a.dim(-1), cb = b.dim(-1);
        if (a.numel() / ca != b.numel() / cb) throw new IllegalArgumentException("cannot concat channels of " + a + " and " + b);
        long rows = a.numel() / ca;
        int[] shape = a.shape();
        shape[shape.length - 1] = ca + cb;
        CudaTensor y = empty(shape);
        copyRows(dev(a), ca, 0, y, ca + cb, 0, rows, ca);
        copyRows(dev(b), cb, 0, y, ca + cb, ca, rows, cb);
        return y;
    }

    @Override
    public Tensor sliceChannels(Tensor x, int from, int count) {
        int c = x.dim(-1);
        if (from < 0 || count < 0 || from + count > c) throw new IllegalArgumentException("channels [" + from + ", " + (from + count) + ") of " + x);
        int[] shape = x.shape();
        shape[shape.length - 1] = count;
        CudaTensor y = empty(shape);
        copyRows(dev(x), c, from, y, count, 0, x.numel() / c, count);
        return y;
    }

    @Override
    public Tensor concatDim1(List<Tensor> parts) {
        CudaTensor y = empty(Shapes.concatDim1(parts));
        int n = y.dim(0);
        long row = y.numel() / n, at = 0;
        for (Tensor t : parts) {
            long len = t.numel() / n;
            copyRows(dev(t), len, 0, y, row, at, n, len);
            at += len;
        }
        return y;
    }

    @Override
    public Tensor concatBatch(List<Tensor> parts) {
        CudaTensor y = empty(Shapes.concatBatch(parts));
        long at = 0;
        for (Tensor t : parts) {
            copyRows(dev(t), 0, 0, y, 0, at, 1, t.numel());
            at += t.numel();
        }
        return y;
    }

    @Override
    public Tensor sliceBatch(Tensor x, int from, int count) {
        CudaTensor y = empty(Shapes.sliceBatch(x, from, count));
        copyRows(dev(x), 0, from * (x.numel() / x.dim(0)), y, 0, 0, 1, y.numel());
        return y;
    }

    @Override
    public Tensor crop(Tensor x, int h, int w) {
        CudaTensor y = empty(Shapes.crop(x, h, w));
        long hh = x.dim(1), ww = x.dim(2), c = x.dim(3);
        for (int b = 0; b < x.dim(0); b++) copyRows(dev(x), ww * c, b * hh * ww * c, y, w * c, b * (long) h * w * c, h, w * c);
        return y;
    }

    private Tensor resize(String kernel, Tensor x, int outH, int outW) {
        int n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
        CudaTensor y = empty(n, outH, outW, c);
        elementwise(kernel, y.numel(), dev(x).ptr(), y.ptr(), n, h, w, c, outH, outW);
        return y;
    }

    @Override
    public Tensor upsampleNearest2x(Tensor x) {
        return resize("resize_nearest_f32", x, 2 * x.dim(1), 2 * x.dim(2));
    }

    @Override
    public Tensor resizeBilinear(Tensor x, int outH, int outW) {
        return resize("resize_bilinear_f32", x, outH, outW);
    }

    @Override
    public Tensor resizeNearest(Tensor x, int outH, int outW) {
        return resize("resize_nearest_f32", x, outH, outW);
    }

    @Override
    public Tensor timestepEmbedding(float[] timesteps, int dim, boolean flipSinToCos, float downscaleFreqShift) {
        return tensor(TimestepEmbedding.sinusoidal(timesteps, dim, flipSinToCos, downscaleFreqShift), timesteps.length, dim);
    }
}
