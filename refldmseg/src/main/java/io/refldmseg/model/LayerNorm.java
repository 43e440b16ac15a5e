package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;

record LayerNorm(Tensor gamma, Tensor beta, float eps) {
    Tensor apply(Backend be, Tensor x) {
        return be.layerNorm(x, gamma, beta, eps);
    }
}
