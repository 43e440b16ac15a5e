package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;

/**
 * The official test pipeline's geometry: scale to fit the model's square (s = size / max(h, w),
 * new size round(w s) x round(h s), small images upscaled, bilinear on the 8-bit image), pad
 * bottom/right (images with 0 after normalisation = mid-grey, masks with background), and at the
 * end crop the padding and resize predictions back to the original size.
 */
final class Preprocess {
    private final Backend be;
    private final int size;

    Preprocess(Backend be, int size) {
        this.be = be;
        this.size = size;
    }

    /** Where the original image lies inside the padded square. */
    record Geometry(int origW, int origH, int fitW, int fitH) {
    }

    Geometry geometry(int w, int h) {
        double s = (double) size / Math.max(w, h);
        return new Geometry(w, h, Math.max(1, Math.min(size, (int) (w * s + 0.5))), Math.max(1, Math.min(size, (int) (h * s + 0.5))));
    }

    /** The image resized and padded, in [-1, 1] ((u8 - 127.5) / 127.5), as [1, size, size, 3]. */
    Tensor image(RgbImage img, Geometry g) {
        float[] u8 = new float[img.rgb().length];
        for (int i = 0; i < u8.length; i++) u8[i] = img.rgb()[i] & 0xff;
        if (g.fitW != img.width() || g.fitH != img.height()) {
            // bilinear on the 8-bit image, rounded back to 8 bits (cv2.resize INTER_LINEAR)
            u8 = be.toHost(be.resizeBilinear(be.tensor(u8, 1, img.height(), img.width(), 3), g.fitH, g.fitW));
            for (int i = 0; i < u8.length; i++) u8[i] = Math.min(255f, Math.max(0f, Math.round(u8[i])));
        }
        float[] out = new float[size * size * 3];
        for (int y = 0; y < g.fitH; y++)
            for (int x = 0; x < g.fitW; x++)
                for (int c = 0; c < 3; c++) out[(y * size + x) * 3 + c] = (u8[(y * g.fitW + x) * 3 + c] - 127.5f) / 127.5f;
        return be.tensor(out, 1, size, size, 3);
    }

    /** The binary mask (1 = object) nearest-resized and padded with background, [1, size, size, 1]. */
    Tensor mask(LabelMap mask, Geometry g, int ignoreLabel) {
        float[] bin = mask.binary(ignoreLabel);
        Tensor t = be.tensor(bin, 1, mask.height(), mask.width(), 1);
        if (g.fitW != mask.width() || g.fitH != mask.height()) t = be.resizeNearest(t, g.fitH, g.fitW);
        float[] fit = be.toHost(t), out = new float[size * size];
        for (int y = 0; y < g.fitH; y++) System.arraycopy(fit, y * g.fitW, out, y * size, g.fitW);
        return be.tensor(out, 1, size, size, 1);
    }

    /** Crops the padding of [1, size, size, C] and resizes bilinearly to the original size (on the backend). */
    Tensor restore(Tensor x, Geometry g) {
        Tensor t = g.fitW == size && g.fitH == size ? x : be.crop(x, g.fitH, g.fitW);
        return g.fitW == g.origW && g.fitH == g.origH ? t : be.resizeBilinear(t, g.origH, g.origW);
    }
}
