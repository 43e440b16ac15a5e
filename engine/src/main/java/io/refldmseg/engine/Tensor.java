package io.refldmseg.engine;

import java.util.Arrays;

/**
 * An activation tensor owned by a {@link Backend}. Inside the engine activations are
 * channels-last: images are [N, H, W, C], token sequences [B, L, C]. Model code only reads
 * shapes; the data lives wherever the backend keeps it.
 */
public abstract class Tensor {
    private final int[] shape;

    protected Tensor(int[] shape) {
        for (int d : shape) if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
        this.shape = shape.clone();
    }

    public final int[] shape() {
        return shape.clone();
    }

    public final int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}; negative indices count from the end. */
    public final int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public final long numel() {
        return numel(shape);
    }

    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + Arrays.toString(shape);
    }
}
