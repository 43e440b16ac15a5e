package io.refldmseg.pipeline;

/** An 8-bit label map (a mask as users draw it: 0 = background, anything else = object). */
public record LabelMap(int width, int height, byte[] labels) {
    public LabelMap {
        if (width <= 0 || height <= 0 || labels.length != (long) width * height)
            throw new IllegalArgumentException("label map " + width + "x" + height + " needs " + (long) width * height + " bytes, got " + labels.length);
    }

    public int at(int y, int x) {
        return labels[y * width + x] & 0xff;
    }

    /**
     * 1 where the label is foreground: non-zero and not {@code ignoreLabel} (mmseg's 255 padding;
     * pass -1 for none).
     */
    public float[] binary(int ignoreLabel) {
        float[] out = new float[labels.length];
        for (int i = 0; i < labels.length; i++) {
            int v = labels[i] & 0xff;
            out[i] = v != 0 && v != ignoreLabel ? 1f : 0f;
        }
        return out;
    }
}
