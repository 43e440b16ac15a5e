package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.LoraAdapter;
import io.refldmseg.engine.Tensor;

import java.util.List;

/**
 * An attention projection (to_q, to_k, to_v, to_out.0) that can carry LoRA adapters. The base
 * weight never changes; adapters are swapped by replacing the list.
 *
 * @param name the projection's diffusers name, e.g. "mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
 */
public final class Projection {
    final String name;
    final LinearWeights base;
    private volatile List<LoraAdapter> adapters = List.of();

    Projection(String name, LinearWeights base) {
        this.name = name;
        this.base = base;
    }

    public int inFeatures() {
        return base.inFeatures();
    }

    public int outFeatures() {
        return base.outFeatures();
    }

    public void setAdapters(List<LoraAdapter> adapters) {
        this.adapters = List.copyOf(adapters);
    }

    Tensor apply(Backend be, Tensor x) {
        List<LoraAdapter> a = adapters;
        return a.isEmpty() ? be.linear(x, base) : be.linear(x, base, a);
    }

    /** residual + this projection of x (the backend may fold the sum into the product). */
    Tensor applyPlus(Backend be, Tensor x, Tensor residual) {
        return be.linearResidual(x, base, adapters, residual);
    }
}
