package io.refldmseg.engine.cuda;

import io.refldmseg.engine.Tensor;

/**
 * A compact row-major fp32 tensor in device memory (a CUdeviceptr). Views made by reshape share
 * one address cell, so when a closing scope moves a kept tensor down the arena, its views follow.
 */
final class CudaTensor extends Tensor {
    private final long[] address;

    CudaTensor(long ptr, int... shape) {
        this(new long[]{ptr}, shape);
    }

    private CudaTensor(long[] address, int... shape) {
        super(shape);
        this.address = address;
    }

    long ptr() {
        return address[0];
    }

    /** The same memory seen with another shape. */
    CudaTensor view(int... shape) {
        return new CudaTensor(address, shape);
    }

    void move(long ptr) {
        address[0] = ptr;
    }
}
