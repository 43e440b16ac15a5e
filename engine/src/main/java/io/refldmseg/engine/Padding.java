package io.refldmseg.engine;

/** Zero padding of a convolution input, per side. */
public record Padding(int top, int left, int bottom, int right) {
    public static Padding same(int p) {
        return new Padding(p, p, p, p);
    }

    /** The VAE encoder's downsample: pad right and bottom by one, none on the top/left. */
    public static final Padding BOTTOM_RIGHT_1 = new Padding(0, 0, 1, 1);
    public static final Padding NONE = new Padding(0, 0, 0, 0);
}
