package io.refldmseg.engine.cpu;

import io.refldmseg.engine.Tensor;

/** A tensor in a Java float array, compact row-major. */
final class CpuTensor extends Tensor {
    final float[] data;

    CpuTensor(float[] data, int... shape) {
        super(shape);
        if (data.length != numel())
            throw new IllegalArgumentException(data.length + " elements do not fill shape " + java.util.Arrays.toString(shape));
        this.data = data;
    }

    static CpuTensor zeros(int... shape) {
        return new CpuTensor(new float[Math.toIntExact(numel(shape))], shape);
    }
}
