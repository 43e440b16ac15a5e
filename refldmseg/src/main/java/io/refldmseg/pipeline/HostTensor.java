package io.refldmseg.pipeline;

/** A result tensor on the host, in PyTorch's layout (NCHW), as saved by --save-tensors. */
public record HostTensor(long[] shape, float[] data, boolean unsignedByte) {
    public static HostTensor f32(float[] data, long... shape) {
        return new HostTensor(shape, data, false);
    }

    public static HostTensor u8(float[] data, long... shape) {
        return new HostTensor(shape, data, true);
    }
}
