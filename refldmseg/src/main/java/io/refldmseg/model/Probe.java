package io.refldmseg.model;

import io.refldmseg.engine.Tensor;

/** Receives named intermediate activations during a forward (tests, --save-tensors). */
@FunctionalInterface
public interface Probe {
    Probe NONE = (name, t) -> {
    };

    void record(String name, Tensor t);
}
