package io.refldmseg.engine;

/** A conv2d weight [out, in, kh, kw] and optional bias, packed once by a backend for its kernels. */
public interface ConvWeights {
    int inChannels();

    int outChannels();

    int kernelHeight();

    int kernelWidth();
}
