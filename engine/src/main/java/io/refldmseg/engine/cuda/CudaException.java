package io.refldmseg.engine.cuda;

/** A CUDA driver call failed: names the call and the CUDA error. */
public final class CudaException extends RuntimeException {
    public CudaException(String message) {
        super(message);
    }
}
