package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;

import java.util.List;

/**
 * diffusers' Attention: q from x, k and v from the context (x itself for self-attention),
 * multi-head scaled dot product with an optional key mask, then to_out.0.
 */
final class Attention {
    final Projection toQ, toK, toV, toOut;
    final int heads;

    /** {@code queryDim} channels of x, {@code contextDim} of the context (= queryDim for self-attention). */
    Attention(Params p, String prefix, int queryDim, int contextDim, int heads) {
        this.toQ = new Projection(prefix + ".to_q", p.linear(prefix + ".to_q", Params.ANY, queryDim));
        int inner = toQ.outFeatures();
        if (heads <= 0 || inner % heads != 0)
            throw new io.refldmseg.loader.CheckpointException(p.weights.source() + ": '" + prefix + "' has " + inner
                    + " channels, not divisible into " + heads + " heads");
        this.toK = new Projection(prefix + ".to_k", p.linear(prefix + ".to_k", inner, contextDim));
        this.toV = new Projection(prefix + ".to_v", p.linear(prefix + ".to_v", inner, contextDim));
        this.toOut = new Projection(prefix + ".to_out.0", p.linear(prefix + ".to_out.0", queryDim, inner));
        this.heads = heads;
    }

    List<Projection> projections() {
        return List.of(toQ, toK, toV, toOut);
    }

    /** x [B, L, C]; context [B, Lk, Cc] or null for self-attention; keyMask [B, Lk] or null. */
    Tensor forward(Backend be, Tensor x, Tensor context, Tensor keyMask) {
        Tensor kv = context == null ? x : context;
        Tensor q = toQ.apply(be, x), k = toK.apply(be, kv), v = toV.apply(be, kv);
        return toOut.apply(be, be.attention(q, k, v, heads, keyMask));
    }
}
