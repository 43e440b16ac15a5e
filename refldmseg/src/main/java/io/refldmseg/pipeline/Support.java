package io.refldmseg.pipeline;

/** One in-context example: an image and the mask of the thing to segment in it. */
public record Support(RgbImage image, LabelMap mask) {
    public Support {
        if (image.width() != mask.width() || image.height() != mask.height())
            throw new IllegalArgumentException("support mask is " + mask.width() + "x" + mask.height()
                    + " but its image is " + image.width() + "x" + image.height());
    }
}
