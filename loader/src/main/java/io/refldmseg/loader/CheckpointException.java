package io.refldmseg.loader;

/**
 * A checkpoint could not be read or does not hold what the model needs. The message always
 * names the file and, where it applies, the tensor or header field at fault.
 */
public class CheckpointException extends RuntimeException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
