package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.UnfusedAttention;

/**
 * What one named {@link Attention} layer computes between its projections (diffusers' attention
 * processor): given q, k, v after to_q / to_k / to_v it returns the per-query mix of values, [B,
 * Lq, C], that to_out.0 then projects. The default, {@link #FUSED}, is the backend's fused
 * masked attention. A processor may use any backend op (attentionScores, attend,
 * attentionWithBias give the unfused path) and must not modify its inputs.
 */
@FunctionalInterface
public interface AttentionProcessor {
    Tensor process(Call call);

    /** The fused op with the key mask as diffusers applies it: (1 - m) * -10000 added to the scores. */
    AttentionProcessor FUSED = Call::fused;

    /**
     * One call of a layer: q [B, Lq, C], k and v [B, Lk, C] (heads packed in C), the key mask
     * [B, Lk] (1 attend, 0 masked; null for self-attention), and where the call happens.
     */
    record Call(Backend backend, Attention layer, Tensor q, Tensor k, Tensor v, Tensor keyMask, AttentionContext context) {
        public int heads() {
            return layer.heads();
        }

        /** What the default processor returns. */
        public Tensor fused() {
            return backend.attention(q, k, v, layer.heads(), keyMask);
        }

        /** The key mask as the fused op's additive bias, [B, 1, 1, Lk], or null without a mask. */
        public Tensor hardMaskBias() {
            if (keyMask == null) return null;
            return backend.tensor(UnfusedAttention.hardMaskBias(backend.toHost(keyMask)), keyMask.dim(0), 1, 1, keyMask.dim(1));
        }
    }
}
