package io.refldmseg.engine.cuda;

import io.refldmseg.engine.Tensor;

/** A compact row-major fp32 tensor in device memory at {@code ptr} (a CUdeviceptr). */
final class CudaTensor extends Tensor {
    final long ptr;

    CudaTensor(long ptr, int... shape) {
        super(shape);
        this.ptr = ptr;
    }
}
