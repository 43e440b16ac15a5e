package io.refldmseg.engine;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/**
 * Wraps a backend and adds up wall time and calls per op (conv2d is split by kernel size and shape), to
 * see where a forward spends its time; linear layers are split by their GEMM shape (M x N x K). Timing a synchronous backend's ops is exact; for an
 * asynchronous one it would need a device sync per op. It also counts the multiply-add FLOPs of
 * the GEMM-class ops (linear, conv2d as a direct convolution even where Winograd does fewer,
 * attention's two products), 2 per multiply-add, the figure GFLOP/s rates are quoted in.
 */
public final class ProfilingBackend implements Backend {
    private final Backend inner;
    private final Map<String, LongAdder> nanos = new ConcurrentHashMap<>(), calls = new ConcurrentHashMap<>(), flops = new ConcurrentHashMap<>();

    public ProfilingBackend(Backend inner) {
        this.inner = inner;
    }

    private <T> T time(String op, Supplier<T> body) {
        long t0 = System.nanoTime();
        T r = body.get();
        nanos.computeIfAbsent(op, k -> new LongAdder()).add(System.nanoTime() - t0);
        calls.computeIfAbsent(op, k -> new LongAdder()).increment();
        return r;
    }

    private <T> T time(String op, long flop, Supplier<T> body) {
        T r = time(op, body);
        count(op, flop);
        return r;
    }

    private void count(String op, long flop) {
        flops.computeIfAbsent(op, k -> new LongAdder()).add(flop);
    }

    /** Op -> {milliseconds, calls, GFLOP (0 for ops that are not counted)}, sorted by op name. */
    public Map<String, double[]> report() {
        Map<String, double[]> out = new TreeMap<>();
        nanos.forEach((k, v) -> out.put(k, new double[]{v.sum() / 1e6, calls.get(k).sum(), flops.containsKey(k) ? flops.get(k).sum() / 1e9 : 0}));
        return out;
    }

    /** FLOPs counted since the last {@link #reset()}. */
    public long flops() {
        return flops.values().stream().mapToLong(LongAdder::sum).sum();
    }

    public void reset() {
        nanos.clear();
        calls.clear();
        flops.clear();
    }

    /** Rows of x as a GEMM's M: every dimension but the last. */
    private static long rows(Tensor x) {
        return x.numel() / x.dim(-1);
    }

    /** Both products of attention, q [.., Lq, C] against k / v [.., Lk, C] (every head together spans C). */
    private static long attentionFlops(Tensor q, Tensor k) {
        return 4L * rows(q) * k.dim(-2) * q.dim(-1);
    }

    @Override
    public String name() {
        return inner.name() + " (profiled)";
    }

    @Override
    public Tensor tensor(float[] data, int... shape) {
        return time("tensor", () -> inner.tensor(data, shape));
    }

    @Override
    public float[] toHost(Tensor t) {
        return time("toHost", () -> inner.toHost(t));
    }

    @Override
    public Scope scope() {
        return inner.scope();
    }

    @Override
    public Tensor reshape(Tensor t, int... shape) {
        return inner.reshape(t, shape);
    }

    @Override
    public LinearWeights linearWeights(float[] weight, int outFeatures, int inFeatures, float[] bias) {
        return time("pack linear", () -> inner.linearWeights(weight, outFeatures, inFeatures, bias));
    }

    @Override
    public ConvWeights convWeights(float[] weight, int outChannels, int inChannels, int kh, int kw, float[] bias) {
        return time("pack conv", () -> inner.convWeights(weight, outChannels, inChannels, kh, kw, bias));
    }

    @Override
    public Tensor linear(Tensor x, LinearWeights w) {
        return time("linear " + rows(x) + "x" + w.outFeatures() + "x" + w.inFeatures(), 2 * rows(x) * w.outFeatures() * w.inFeatures(),
                () -> inner.linear(x, w));
    }

    @Override
    public Tensor linear(Tensor x, LinearWeights w, List<LoraAdapter> adapters) {
        return time("linear+lora", 2 * rows(x) * w.outFeatures() * w.inFeatures(), () -> inner.linear(x, w, adapters));
    }

    @Override
    public Tensor linearResidual(Tensor x, LinearWeights w, List<LoraAdapter> adapters, Tensor residual) {
        String what = adapters.isEmpty() ? "linear " + rows(x) + "x" + w.outFeatures() + "x" + w.inFeatures() : "linear+lora";
        return time(what + " +residual", 2 * rows(x) * w.outFeatures() * w.inFeatures(), () -> inner.linearResidual(x, w, adapters, residual));
    }

    @Override
    public Tensor conv2d(Tensor x, ConvWeights w, int stride, Padding padding) {
        String shape = " " + x.dim(1) + "x" + x.dim(2) + "x" + x.dim(3) + "->" + w.outChannels();
        String op = "conv" + w.kernelHeight() + "x" + w.kernelWidth() + (stride > 1 ? " s" + stride : "") + shape;
        Tensor y = time(op, () -> inner.conv2d(x, w, stride, padding));
        count(op, 2 * rows(y) * w.outChannels() * w.inChannels() * w.kernelHeight() * w.kernelWidth()); // from the output's pixel count
        return y;
    }

    @Override
    public Tensor groupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, boolean silu) {
        return time(silu ? "groupNorm+silu" : "groupNorm", () -> inner.groupNorm(x, groups, gamma, beta, eps, silu));
    }

    @Override
    public Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps) {
        return time("layerNorm", () -> inner.layerNorm(x, gamma, beta, eps));
    }

    @Override
    public Tensor attention(Tensor q, Tensor k, Tensor v, int heads, Tensor keyMask) {
        return time("attention", attentionFlops(q, k), () -> inner.attention(q, k, v, heads, keyMask));
    }

    @Override
    public Tensor attentionScores(Tensor q, Tensor k, int heads, Tensor bias) {
        return time("attentionScores", attentionFlops(q, k) / 2, () -> inner.attentionScores(q, k, heads, bias));
    }

    @Override
    public Tensor attend(Tensor p, Tensor v, int heads) {
        return time("attend", 2 * rows(p) / heads * v.dim(-2) * v.dim(-1), () -> inner.attend(p, v, heads));
    }

    @Override
    public Tensor attentionWithBias(Tensor q, Tensor k, Tensor v, int heads, Tensor bias) {
        return time("attentionWithBias", attentionFlops(q, k), () -> inner.attentionWithBias(q, k, v, heads, bias));
    }

    @Override
    public Tensor softmax(Tensor x) {
        return time("softmax", () -> inner.softmax(x));
    }

    @Override
    public Tensor silu(Tensor x) {
        return time("silu", () -> inner.silu(x));
    }

    @Override
    public Tensor gelu(Tensor x) {
        return time("gelu", () -> inner.gelu(x));
    }

    @Override
    public Tensor quickGelu(Tensor x) {
        return time("quickGelu", () -> inner.quickGelu(x));
    }

    @Override
    public Tensor geglu(Tensor x) {
        return time("geglu", () -> inner.geglu(x));
    }

    @Override
    public Tensor add(Tensor a, Tensor b) {
        return time("add", () -> inner.add(a, b));
    }

    @Override
    public Tensor addPerSample(Tensor x, Tensor v) {
        return time("addPerSample", () -> inner.addPerSample(x, v));
    }

    @Override
    public Tensor axpby(float alpha, Tensor a, float beta, Tensor b) {
        return time("axpby", () -> inner.axpby(alpha, a, beta, b));
    }

    @Override
    public Tensor scale(Tensor x, float s) {
        return time("scale", () -> inner.scale(x, s));
    }

    @Override
    public Tensor concatChannels(Tensor a, Tensor b) {
        return time("concat", () -> inner.concatChannels(a, b));
    }

    @Override
    public Tensor sliceChannels(Tensor x, int from, int count) {
        return time("slice", () -> inner.sliceChannels(x, from, count));
    }

    @Override
    public Tensor concatDim1(List<Tensor> parts) {
        return time("concat", () -> inner.concatDim1(parts));
    }

    @Override
    public Tensor crop(Tensor x, int h, int w) {
        return time("slice", () -> inner.crop(x, h, w));
    }

    @Override
    public Tensor sliceBatch(Tensor x, int from, int count) {
        return time("slice", () -> inner.sliceBatch(x, from, count));
    }

    @Override
    public Tensor concatBatch(List<Tensor> parts) {
        return time("concat", () -> inner.concatBatch(parts));
    }

    @Override
    public Tensor upsampleNearest2x(Tensor x) {
        return time("upsample2x", () -> inner.upsampleNearest2x(x));
    }

    @Override
    public Tensor resizeBilinear(Tensor x, int outH, int outW) {
        return time("resizeBilinear", () -> inner.resizeBilinear(x, outH, outW));
    }

    @Override
    public Tensor resizeNearest(Tensor x, int outH, int outW) {
        return time("resizeNearest", () -> inner.resizeNearest(x, outH, outW));
    }

    @Override
    public Tensor timestepEmbedding(float[] timesteps, int dim, boolean flipSinToCos, float downscaleFreqShift) {
        return time("timestepEmbedding", () -> inner.timestepEmbedding(timesteps, dim, flipSinToCos, downscaleFreqShift));
    }

    @Override
    public void close() {
        inner.close();
    }

    }
