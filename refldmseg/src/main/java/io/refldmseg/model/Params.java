package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.TensorData;

import java.util.Arrays;

/**
 * Turns named checkpoint tensors into backend weights: widened from fp16/bf16 here (the CPU path
 * computes in fp32), packed once by the backend, and checked where they are taken: every tensor
 * must have the rank and the dimensions the network expects from its neighbours ({@link #ANY}
 * where the network learns a width from this tensor), so a wrong file fails at load naming the tensor.
 */
final class Params {
    /** An expected dimension the tensor itself decides. */
    static final int ANY = -1;

    final ModelWeights weights;
    final Backend backend;

    Params(ModelWeights weights, Backend backend) {
        this.weights = weights;
        this.backend = backend;
    }

    boolean has(String name) {
        return weights.has(name);
    }

    /** A linear layer {@code prefix.weight} [out, in] (or a 1x1 conv [out, in, 1, 1]) and optional bias [out]. */
    LinearWeights linear(String prefix, int out, int in) {
        TensorData w = weights.get(prefix + ".weight");
        if (w.rank() == 4 && w.shape()[2] == 1 && w.shape()[3] == 1) w = w.reshaped(w.shape()[0], w.shape()[1]);
        expect(w, out, in);
        return backend.linearWeights(w.toFloats(), w.dim(0), w.dim(1), bias(prefix, w.dim(0)));
    }

    /** A stacked linear weight [parts x out, in] (and bias) cut into {@code parts} equal row blocks: q, k, v of an in_proj. */
    java.util.List<LinearWeights> linearSplit(String weightName, String biasName, int parts, int out, int in) {
        TensorData w = weights.get(weightName);
        expect(w, out < 0 ? ANY : parts * out, in);
        if (w.dim(0) % parts != 0) throw shape(w, "[" + parts + " x out, in]");
        int rows = w.dim(0) / parts, cols = w.dim(1);
        float[] all = w.toFloats(), bias = has(biasName) ? weights.get(biasName, w.shape()[0]).toFloats() : null;
        java.util.List<LinearWeights> result = new java.util.ArrayList<>();
        for (int i = 0; i < parts; i++)
            result.add(backend.linearWeights(Arrays.copyOfRange(all, i * rows * cols, (i + 1) * rows * cols), rows, cols,
                    bias == null ? null : Arrays.copyOfRange(bias, i * rows, (i + 1) * rows)));
        return result;
    }

    /** A conv weight [out, in, kh, kw] and optional bias [out]. */
    ConvWeights conv(String prefix, int out, int in, int kh, int kw) {
        TensorData w = weights.get(prefix + ".weight");
        expect(w, out, in, kh, kw);
        return backend.convWeights(w.toFloats(), w.dim(0), w.dim(1), w.dim(2), w.dim(3), bias(prefix, w.dim(0)));
    }

    /** A square conv [out, in, k, k]. */
    ConvWeights conv(String prefix, int out, int in, int k) {
        return conv(prefix, out, in, k, k);
    }

    GroupNorm groupNorm(String prefix, int channels, int groups, float eps) {
        Tensor gamma = vector(prefix + ".weight", channels), beta = vector(prefix + ".bias", gamma.dim(0));
        if (groups <= 0 || gamma.dim(0) % groups != 0)
            throw new CheckpointException(weights.source() + ": '" + prefix + "' has " + gamma.dim(0)
                    + " channels, not divisible into " + groups + " groups");
        return new GroupNorm(gamma, beta, groups, eps);
    }

    LayerNorm layerNorm(String prefix, int width, float eps) {
        Tensor gamma = vector(prefix + ".weight", width);
        return new LayerNorm(gamma, vector(prefix + ".bias", gamma.dim(0)), eps);
    }

    /** A 1-D parameter [n] as a backend tensor. */
    Tensor vector(String name, int n) {
        TensorData t = weights.get(name);
        expect(t, n);
        return backend.tensor(t.toFloats(), t.dim(0));
    }

    private float[] bias(String prefix, int out) {
        if (!has(prefix + ".bias")) return null;
        TensorData b = weights.get(prefix + ".bias");
        expect(b, out);
        return b.toFloats();
    }

    /** {@code t} has exactly {@code dims.length} dimensions, each equal to its expected value unless that is ANY, and none is 0. */
    void expect(TensorData t, int... dims) {
        boolean ok = t.rank() == dims.length;
        for (int i = 0; ok && i < dims.length; i++)
            ok = t.shape()[i] > 0 && t.shape()[i] <= Integer.MAX_VALUE && (dims[i] == ANY || t.shape()[i] == dims[i]);
        if (!ok) {
            StringBuilder want = new StringBuilder("[");
            for (int i = 0; i < dims.length; i++) want.append(i == 0 ? "" : ", ").append(dims[i] == ANY ? "*" : String.valueOf(dims[i]));
            throw shape(t, want.append("]").toString());
        }
    }

    private CheckpointException shape(TensorData t, String expected) {
        return new CheckpointException(weights.source() + ": tensor '" + t.name() + "' has shape "
                + Arrays.toString(t.shape()) + ", expected " + expected);
    }
}
