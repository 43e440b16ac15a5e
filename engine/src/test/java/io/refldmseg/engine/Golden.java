package io.refldmseg.engine;

import io.refldmseg.loader.Json;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Golden fixtures and their honest tolerances: a quantity may differ from the float32 PyTorch
 * reference by at most 10x the float32-vs-float64 max abs error that errors.json records for it.
 */
public final class Golden {
    private Golden() {
    }

    public static Path dir() {
        return io.refldmseg.loader.Fixtures.dir();
    }

    public static TensorFile open(String name) {
        return TensorFile.open(dir().resolve(name));
    }

    private static Map<String, Object> errors;

    /** The fp32-vs-fp64 max abs error recorded for {@code key} (e.g. "ops/conv1x1.y"). */
    @SuppressWarnings("unchecked")
    public static synchronized double f64Error(String key) {
        try {
            if (errors == null) errors = (Map<String, Object>) ((Map<String, Object>) Json.parse(Files.readString(dir().resolve("errors.json")))).get("errors");
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        Map<String, Object> e = (Map<String, Object>) errors.get(key);
        if (e == null) throw new IllegalArgumentException("errors.json has no entry " + key);
        return ((Number) e.get("max_abs_err")).doubleValue();
    }

    /** Tolerance for {@code key}: 10x its recorded float32-vs-float64 error. */
    public static double tolerance(String key) {
        return 10 * f64Error(key);
    }

    public static float[] floats(TensorFile f, String name) {
        return f.tensor(name).toFloats();
    }

    public static float[] nhwc(TensorData t) {
        return Layouts.nchwToNhwc(t.toFloats(), t.dim(0), t.dim(1), t.dim(2), t.dim(3));
    }

    /** A stored NCHW image as a channels-last backend tensor. */
    public static Tensor image(Backend be, TensorData t) {
        return be.tensor(nhwc(t), t.dim(0), t.dim(2), t.dim(3), t.dim(1));
    }

    /** A stored tensor as a backend tensor of the same shape. */
    public static Tensor plain(Backend be, TensorData t) {
        int[] shape = new int[t.rank()];
        for (int i = 0; i < shape.length; i++) shape[i] = t.dim(i);
        return be.tensor(t.toFloats(), shape);
    }

    /** Max |a - b|, failing if it exceeds {@code atol}. */
    public static double assertClose(String what, float[] expected, float[] actual, double atol) {
        assertEquals(expected.length, actual.length, what + ": length");
        double max = 0;
        int at = -1;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs((double) expected[i] - actual[i]);
            if (!(d <= max)) {
                max = d;
                at = i;
            }
        }
        if (!(max <= atol))
            fail(String.format("%s: max abs error %.3g at %d (expected %g, got %g) exceeds %.3g", what, max, at,
                    expected[at], actual[at], atol));
        return max;
    }
}
