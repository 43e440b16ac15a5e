package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.TensorData;

/**
 * Turns named checkpoint tensors into backend weights: widened from fp16/bf16 here (the CPU path
 * computes in fp32), shape-checked, and packed once by the backend.
 */
final class Params {
    final ModelWeights weights;
    final Backend backend;

    Params(ModelWeights weights, Backend backend) {
        this.weights = weights;
        this.backend = backend;
    }

    boolean has(String name) {
        return weights.has(name);
    }

    /** A linear layer {@code prefix.weight} [out, in] (or a 1x1 conv [out, in, 1, 1]) and optional bias. */
    LinearWeights linear(String prefix) {
        TensorData w = weights.get(prefix + ".weight");
        if (w.rank() == 4 && w.dim(2) == 1 && w.dim(3) == 1) w = w.reshaped(w.shape()[0], w.shape()[1]);
        if (w.rank() != 2) throw shape(w, "[out, in]");
        return backend.linearWeights(w.toFloats(), w.dim(0), w.dim(1), bias(prefix, w.dim(0)));
    }

    /** A stacked linear weight (and bias) cut into {@code parts} equal row blocks: q, k, v of an in_proj. */
    java.util.List<LinearWeights> linearSplit(String weightName, String biasName, int parts) {
        TensorData w = weights.get(weightName);
        if (w.rank() != 2 || w.dim(0) % parts != 0) throw shape(w, "[" + parts + " x out, in]");
        int rows = w.dim(0) / parts, in = w.dim(1);
        float[] all = w.toFloats(), bias = has(biasName) ? weights.get(biasName, w.shape()[0]).toFloats() : null;
        java.util.List<LinearWeights> out = new java.util.ArrayList<>();
        for (int i = 0; i < parts; i++)
            out.add(backend.linearWeights(java.util.Arrays.copyOfRange(all, i * rows * in, (i + 1) * rows * in), rows, in,
                    bias == null ? null : java.util.Arrays.copyOfRange(bias, i * rows, (i + 1) * rows)));
        return out;
    }

    ConvWeights conv(String prefix) {
        TensorData w = weights.get(prefix + ".weight");
        if (w.rank() != 4) throw shape(w, "[out, in, kh, kw]");
        return backend.convWeights(w.toFloats(), w.dim(0), w.dim(1), w.dim(2), w.dim(3), bias(prefix, w.dim(0)));
    }

    GroupNorm groupNorm(String prefix, int groups, float eps) {
        Tensor gamma = vector(prefix + ".weight"), beta = vector(prefix + ".bias");
        if (gamma.dim(0) % groups != 0)
            throw new CheckpointException(weights.source() + ": '" + prefix + "' has " + gamma.dim(0)
                    + " channels, not divisible into " + groups + " groups");
        return new GroupNorm(gamma, beta, groups, eps);
    }

    LayerNorm layerNorm(String prefix, float eps) {
        return new LayerNorm(vector(prefix + ".weight"), vector(prefix + ".bias"), eps);
    }

    /** A 1-D parameter as a backend tensor. */
    Tensor vector(String name) {
        TensorData t = weights.get(name);
        return backend.tensor(t.toFloats(), Math.toIntExact(t.numel()));
    }

    private float[] bias(String prefix, int out) {
        if (!has(prefix + ".bias")) return null;
        TensorData b = weights.get(prefix + ".bias");
        if (b.numel() != out) throw shape(b, "[" + out + "]");
        return b.toFloats();
    }

    private CheckpointException shape(TensorData t, String expected) {
        return new CheckpointException(weights.source() + ": tensor '" + t.name() + "' has shape "
                + java.util.Arrays.toString(t.shape()) + ", expected " + expected);
    }
}
