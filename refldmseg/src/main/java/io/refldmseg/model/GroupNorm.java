package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;

record GroupNorm(Tensor gamma, Tensor beta, int groups, float eps) {
    Tensor apply(Backend be, Tensor x, boolean silu) {
        return be.groupNorm(x, groups, gamma, beta, eps, silu);
    }
}
