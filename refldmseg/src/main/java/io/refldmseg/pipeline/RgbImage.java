package io.refldmseg.pipeline;

/** An 8-bit RGB image, row-major HWC. */
public record RgbImage(int width, int height, byte[] rgb) {
    public RgbImage {
        if (width <= 0 || height <= 0 || rgb.length != (long) width * height * 3)
            throw new IllegalArgumentException("RGB image " + width + "x" + height + " needs " + (long) width * height * 3 + " bytes, got " + rgb.length);
    }

    public int at(int y, int x, int c) {
        return rgb[(y * width + x) * 3 + c] & 0xff;
    }
}
