package io.refldmseg.engine;

import java.util.List;

/**
 * The op set model code is written against. Activations are channels-last ({@link Tensor});
 * weights are packed once through {@link #linearWeights} / {@link #convWeights}. Implementations:
 * {@code CpuBackend} (fp32, Vector API) and, later, a CUDA backend. Every op returns a new tensor
 * and leaves its inputs unchanged.
 */
public interface Backend extends AutoCloseable {
    String name();

    /**
     * Opens a stretch of model code whose intermediate tensors the backend may reuse once it
     * closes: every tensor an op creates while the scope is open is dead after {@link Scope#close},
     * except those passed to {@link Scope#keep} (and views of them), which pass to the enclosing
     * scope. Use it with try-with-resources around a block whose only result is what it returns.
     * The CPU backend recycles the arrays of dead tensors (no allocation, no zeroing, fewer GC
     * pauses); a backend without reuse returns {@link Scope#NONE}.
     */
    default Scope scope() {
        return Scope.NONE;
    }

    /**
     * Frees the memory the backend keeps for reuse between ops (the CPU backend's dead output
     * arrays); live tensors stay valid. For a caller that moves to work of other shapes and wants
     * the memory back (the collector can reclaim it only once nothing holds it).
     */
    default void releaseWorkspace() {
    }

    /** See {@link Backend#scope()}. */
    interface Scope extends AutoCloseable {
        Scope NONE = new Scope() {
            @Override
            public <T extends Tensor> T keep(T t) {
                return t;
            }

            @Override
            public void close() {
            }
        };

        /** Marks {@code t} as outliving this scope; returns it. */
        <T extends Tensor> T keep(T t);

        @Override
        void close();
    }

    // ---- data in and out ----

    /** A tensor holding a copy of {@code data} (row-major over {@code shape}). */
    Tensor tensor(float[] data, int... shape);

    /** The tensor's elements in row-major order. */
    float[] toHost(Tensor t);

    /** The same elements seen with another shape of equal element count (no copy). */
    Tensor reshape(Tensor t, int... shape);

    // ---- weights ----

    /** Packs a linear weight [out, in] (row-major) and optional bias [out]. */
    LinearWeights linearWeights(float[] weight, int outFeatures, int inFeatures, float[] bias);

    /** Packs a conv weight [out, in, kh, kw] (PyTorch order) and optional bias [out]. */
    ConvWeights convWeights(float[] weight, int outChannels, int inChannels, int kh, int kw, float[] bias);

    // ---- ops ----

    /** x [..., in] -> [..., out]: x W^T + b. */
    Tensor linear(Tensor x, LinearWeights w);

    /** x W^T + b + sum over adapters of scale * (x A^T) B^T, adapters unmerged. */
    Tensor linear(Tensor x, LinearWeights w, List<LoraAdapter> adapters);

    /** residual + {@link #linear(Tensor, LinearWeights, List)}: a block's residual connection, which a backend may fold into the product. */
    default Tensor linearResidual(Tensor x, LinearWeights w, List<LoraAdapter> adapters, Tensor residual) {
        return add(residual, linear(x, w, adapters));
    }

    /** 2-D convolution of x [N, H, W, Cin] -> [N, OH, OW, Cout]. */
    Tensor conv2d(Tensor x, ConvWeights w, int stride, Padding padding);

    /** GroupNorm over x [N, ..., C] (channels last), optionally followed by SiLU. */
    Tensor groupNorm(Tensor x, int groups, Tensor gamma, Tensor beta, float eps, boolean silu);

    /** LayerNorm over the last dimension. */
    Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, float eps);

    /**
     * Multi-head scaled dot-product attention. q [B, Lq, C], k and v [B, Lk, C] with heads packed
     * in C (channel = head * headDim + d); scale headDim^-0.5. {@code keyMask} [B, Lk] (1 keep, 0
     * masked) or null adds (1 - m) * -10000 to the scaled scores, as diffusers does.
     */
    Tensor attention(Tensor q, Tensor k, Tensor v, int heads, Tensor keyMask);

    /**
     * Attention probabilities for variants that need them: softmax over keys of q k^T / sqrt(d)
     * + bias, per head. q [B, Lq, C], k [B, Lk, C] (heads packed in C); bias broadcastable
     * [B|1, H|1, Lq|1, Lk] or null. Returns [B, H, Lq, Lk]. The default runs on the host; a
     * backend overrides it to keep the data where it is.
     */
    default Tensor attentionScores(Tensor q, Tensor k, int heads, Tensor bias) {
        int[] biasShape = UnfusedAttention.checkScores(q, k, heads, bias);
        int b = q.dim(0), lq = q.dim(1), c = q.dim(2), lk = k.dim(1);
        float[] out = new float[Math.toIntExact((long) b * heads * lq * lk)];
        UnfusedAttention.scores(toHost(q), toHost(k), lq, lk, c, heads, bias == null ? null : toHost(bias), biasShape, out, 0, b * heads);
        return tensor(out, b, heads, lq, lk);
    }

    /** p [B, H, Lq, Lk] (probabilities) times v [B, Lk, C] per head: [B, Lq, C]. */
    default Tensor attend(Tensor p, Tensor v, int heads) {
        UnfusedAttention.checkAttend(p, v, heads);
        int b = v.dim(0), lq = p.dim(2), lk = v.dim(1), c = v.dim(2);
        float[] out = new float[Math.toIntExact((long) b * lq * c)];
        UnfusedAttention.attend(toHost(p), toHost(v), lq, lk, c, heads, out, 0, b * heads);
        return tensor(out, b, lq, c);
    }

    /** Attention with a general additive bias (broadcastable [B|1, H|1, Lq|1, Lk], or null) instead of a key mask. */
    default Tensor attentionWithBias(Tensor q, Tensor k, Tensor v, int heads, Tensor bias) {
        if (bias == null) return attention(q, k, v, heads, null);
        return attend(attentionScores(q, k, heads, bias), v, heads);
    }

    /** Softmax over the last dimension. */
    Tensor softmax(Tensor x);

    Tensor silu(Tensor x);

    /** GELU with the exact erf form. */
    Tensor gelu(Tensor x);

    /** x * sigmoid(1.702 x) (OpenAI CLIP). */
    Tensor quickGelu(Tensor x);

    /** [..., 2H] -> [..., H]: first half * gelu(second half). */
    Tensor geglu(Tensor x);

    Tensor add(Tensor a, Tensor b);

    /** x [N, ..., C] + v [N, C], v broadcast over the middle dimensions (per-sample channel bias). */
    Tensor addPerSample(Tensor x, Tensor v);

    /** a * alpha + b * beta, elementwise, same shapes. */
    Tensor axpby(float alpha, Tensor a, float beta, Tensor b);

    Tensor scale(Tensor x, float s);

    /** Concatenates along the last (channel) dimension. */
    Tensor concatChannels(Tensor a, Tensor b);

    /** Channels [from, from + count) of the last dimension. */
    Tensor sliceChannels(Tensor x, int from, int count);

    /** Concatenates along dimension 1 (tokens of [B, L, C] or rows of images). */
    Tensor concatDim1(List<Tensor> parts);

    /** Concatenates along dimension 0 (batch). */
    Tensor concatBatch(List<Tensor> parts);

    /** Rows [from, from + count) of dimension 0 (batch). */
    Tensor sliceBatch(Tensor x, int from, int count);

    /** The top-left {@code h x w} of each image of [N, H, W, C] (removing bottom/right padding). */
    Tensor crop(Tensor x, int h, int w);

    /** [N, H, W, C] -> [N, 2H, 2W, C], nearest. */
    Tensor upsampleNearest2x(Tensor x);

    /** Bilinear resize of [N, H, W, C] with PyTorch's align_corners=False rule (no antialias). */
    Tensor resizeBilinear(Tensor x, int outH, int outW);

    /** Nearest resize of [N, H, W, C] with PyTorch's legacy "nearest" rule (floor(dst * in/out)). */
    Tensor resizeNearest(Tensor x, int outH, int outW);

    /** Sinusoidal timestep embedding [T] -> [T, dim], diffusers' get_timestep_embedding in fp32. */
    Tensor timestepEmbedding(float[] timesteps, int dim, boolean flipSinToCos, float downscaleFreqShift);

    @Override
    default void close() {
    }
}
