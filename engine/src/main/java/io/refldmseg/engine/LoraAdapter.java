package io.refldmseg.engine;

/**
 * One low-rank adapter for a linear layer: y += scale * (x A^T) B^T with A = {@code down}
 * [rank, in] and B = {@code up} [out, rank]. Kept apart from the base weight so adapters can be
 * added, removed or re-weighted between requests without touching the base weights.
 */
public record LoraAdapter(LinearWeights down, LinearWeights up, float scale) {
    public LoraAdapter {
        if (up.inFeatures() != down.outFeatures())
            throw new IllegalArgumentException("LoRA up takes " + up.inFeatures() + " features, down gives " + down.outFeatures());
    }

    public int rank() {
        return down.outFeatures();
    }
}
