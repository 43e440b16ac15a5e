package io.refldmseg.loader;

import java.util.Arrays;

/**
 * Checked size arithmetic for everything a file declares: element counts, byte counts and
 * offsets are computed in long and refused, with the file and tensor named, when they are
 * negative or would overflow, so no declared size can wrap past a bounds check.
 */
public final class Sizes {
    /** Largest element count a Java array (and so one host tensor) can hold. */
    public static final long MAX_ARRAY = Integer.MAX_VALUE - 8;

    private Sizes() {
    }

    /** The product of {@code shape}, each dimension >= 0 and the product < 2^63. */
    public static long elements(String source, String tensor, long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw fail(source, tensor, "shape " + Arrays.toString(shape) + " has a negative dimension");
            n = multiply(source, tensor, "shape " + Arrays.toString(shape), n, d);
        }
        return n;
    }

    /** a * b for non-negative a and b, refused on overflow. */
    public static long multiply(String source, String tensor, String what, long a, long b) {
        if (a < 0 || b < 0) throw fail(source, tensor, what + ": negative size");
        if (b != 0 && a > Long.MAX_VALUE / b) throw fail(source, tensor, what + " overflows a 64-bit size");
        return a * b;
    }

    /** a + b for non-negative a and b, refused on overflow. */
    public static long add(String source, String tensor, String what, long a, long b) {
        if (a < 0 || b < 0) throw fail(source, tensor, what + ": negative size");
        if (a > Long.MAX_VALUE - b) throw fail(source, tensor, what + " overflows a 64-bit size");
        return a + b;
    }

    /** {@code n} as an int array length, refused when it is larger than a Java array can hold. */
    public static int arrayLength(String source, String tensor, long n) {
        if (n < 0 || n > MAX_ARRAY)
            throw fail(source, tensor, n + " elements do not fit one Java array (at most " + MAX_ARRAY + ")");
        return (int) n;
    }

    static CheckpointException fail(String source, String tensor, String what) {
        return new CheckpointException(source + (tensor == null ? "" : ": tensor '" + tensor + "'") + ": " + what);
    }
}
