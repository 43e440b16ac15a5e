package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.CheckpointException;

import java.util.List;

/**
 * diffusers' Attention: q from x, k and v from the context (x itself for self-attention),
 * multi-head scaled dot product with an optional key mask, then to_out.0. Every attention of the
 * three networks is one of these, named by its checkpoint path
 * ({@code down_blocks.1.attentions.0.transformer_blocks.0.attn2}, {@code encoder.mid_block.attentions.0},
 * {@code transformer.resblocks.5.attn}); what happens between the projections is its
 * {@link AttentionProcessor}, the fused op unless one is set.
 */
public final class Attention {
    final Projection toQ, toK, toV, toOut;
    private final int heads;
    private final String name;
    private final AttentionContext.Network network;
    private final boolean cross;
    private volatile AttentionProcessor processor = AttentionProcessor.FUSED;

    /** diffusers layout ({@code prefix.to_q} ...): {@code queryDim} channels of x, {@code contextDim} of the context. */
    Attention(Params p, String prefix, AttentionContext.Network network, int queryDim, int contextDim, int heads, boolean cross) {
        this.name = prefix;
        this.network = network;
        this.cross = cross;
        this.toQ = new Projection(prefix + ".to_q", p.linear(prefix + ".to_q", Params.ANY, queryDim));
        int inner = toQ.outFeatures();
        if (heads <= 0 || inner % heads != 0)
            throw new CheckpointException(p.weights.source() + ": '" + prefix + "' has " + inner
                    + " channels, not divisible into " + heads + " heads");
        this.toK = new Projection(prefix + ".to_k", p.linear(prefix + ".to_k", inner, contextDim));
        this.toV = new Projection(prefix + ".to_v", p.linear(prefix + ".to_v", inner, contextDim));
        this.toOut = new Projection(prefix + ".to_out.0", p.linear(prefix + ".to_out.0", queryDim, inner));
        this.heads = heads;
    }

    /** Already packed projections (the vision tower's split in_proj and its out_proj). */
    Attention(String name, AttentionContext.Network network, LinearWeights q, LinearWeights k, LinearWeights v, LinearWeights out, int heads) {
        this.name = name;
        this.network = network;
        this.cross = false;
        this.toQ = new Projection(name + ".in_proj.q", q);
        this.toK = new Projection(name + ".in_proj.k", k);
        this.toV = new Projection(name + ".in_proj.v", v);
        this.toOut = new Projection(name + ".out_proj", out);
        this.heads = heads;
    }

    public String name() {
        return name;
    }

    public AttentionContext.Network network() {
        return network;
    }

    public int heads() {
        return heads;
    }

    /** Keys and values from another sequence (the UNet's attn2, which carries the support key mask). */
    public boolean isCrossAttention() {
        return cross;
    }

    public AttentionProcessor processor() {
        return processor;
    }

    /** Replaces what this layer computes between its projections; {@link AttentionProcessor#FUSED} restores the default. */
    public void setProcessor(AttentionProcessor processor) {
        this.processor = java.util.Objects.requireNonNull(processor, "processor");
    }

    List<Projection> projections() {
        return List.of(toQ, toK, toV, toOut);
    }

    /** to_k and to_v of a context, [B, Lk, C] each. */
    record KeysAndValues(Tensor k, Tensor v) {
    }

    KeysAndValues keysAndValues(Backend be, Tensor context) {
        return new KeysAndValues(toK.apply(be, context), toV.apply(be, context));
    }

    /**
     * x [B, L, C]; context [B, Lk, Cc] or null for self-attention; keyMask [B, Lk] or null;
     * {@code cached}: this layer's {@link #keysAndValues} of that context, computed earlier, or null;
     * {@code residual}: [B, L, C] added to the output (the block's residual connection), or null.
     */
    Tensor forward(Backend be, Tensor x, Tensor context, Tensor keyMask, AttentionContext where, KeysAndValues cached, Tensor residual) {
        KeysAndValues kv = cached != null ? cached : keysAndValues(be, context == null ? x : context);
        Tensor q = toQ.apply(be, x), k = kv.k(), v = kv.v();
        AttentionProcessor p = processor;
        Tensor mixed = p == AttentionProcessor.FUSED ? be.attention(q, k, v, heads, keyMask)
                : p.process(new AttentionProcessor.Call(be, this, q, k, v, keyMask, where));
        return residual == null ? toOut.apply(be, mixed) : toOut.applyPlus(be, mixed, residual);
    }

    @Override
    public String toString() {
        return name + " (" + network.name().toLowerCase() + (cross ? ", cross-attention" : ", self-attention") + ", " + heads + " heads)";
    }
}
