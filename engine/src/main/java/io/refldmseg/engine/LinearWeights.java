package io.refldmseg.engine;

/** A linear layer's weight [out, in] and optional bias, packed once by a backend for its kernels. */
public interface LinearWeights {
    int inFeatures();

    int outFeatures();
}
