package io.refldmseg.engine.cpu;

/** Scalar activation functions in the exact forms PyTorch uses. */
final class Activations {
    private Activations() {
    }

    static float silu(float x) {
        return (float) (x / (1.0 + Math.exp(-x)));
    }

    static float gelu(float x) {
        return (float) (0.5 * x * (1.0 + erf(x / Math.sqrt(2.0))));
    }

    static float quickGelu(float x) {
        return (float) (x / (1.0 + Math.exp(-1.702 * (double) x)));
    }

    /**
     * erf in double via a Chebyshev-fitted erfc (fractional error below 1.2e-7 everywhere;
     * Numerical Recipes' erfcc), enough for a float GELU.
     */
    static double erf(double x) {
        double z = Math.abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? 1.0 - erfc : erfc - 1.0;
    }
}
