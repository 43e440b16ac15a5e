package io.refldmseg.bench;

/**
 * Two timed calls in rounds, {@code first} first in even rounds and {@code second} first in odd
 * ones, so a slow spell of a shared machine falls on both sides, not on whichever ran second.
 */
final class Alternation {
    private Alternation() {
    }

    /** One timing, in ms. */
    interface Timed<E extends Exception> {
        double ms() throws E;
    }

    /** {first's ms per round, second's ms per round}. */
    static <E extends Exception> double[][] run(int rounds, Timed<E> first, Timed<E> second) throws E {
        double[] a = new double[rounds], b = new double[rounds];
        for (int i = 0; i < rounds; i++) {
            if (i % 2 == 0) {
                a[i] = first.ms();
                b[i] = second.ms();
            } else {
                b[i] = second.ms();
                a[i] = first.ms();
            }
        }
        return new double[][]{a, b};
    }

    /** numerator[i] / denominator[i], round by round. */
    static double[] ratios(double[] numerator, double[] denominator) {
        double[] r = new double[numerator.length];
        for (int i = 0; i < r.length; i++) r[i] = numerator[i] / denominator[i];
        return r;
    }
}
