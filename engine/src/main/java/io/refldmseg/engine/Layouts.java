package io.refldmseg.engine;

/** Layout conversion at the engine's edges: PyTorch NCHW arrays to channels-last and back. */
public final class Layouts {
    private Layouts() {
    }

    public static float[] nchwToNhwc(float[] x, int n, int c, int h, int w) {
        float[] y = new float[x.length];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < h * w; i++) y[(b * h * w + i) * c + ch] = x[(b * c + ch) * h * w + i];
        return y;
    }

    public static float[] nhwcToNchw(float[] x, int n, int h, int w, int c) {
        float[] y = new float[x.length];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < h * w; i++) y[(b * c + ch) * h * w + i] = x[(b * h * w + i) * c + ch];
        return y;
    }
}
