package io.refldmseg.pipeline;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reads images and masks (PNG, JPEG, anything javax.imageio knows) and writes masks and overlays as PNG. */
public final class ImageFiles {
    private ImageFiles() {
    }

    /**
     * Largest image accepted, in pixels (width x height), checked from the file's header before
     * anything is decoded: 40 MP (e.g. 8000 x 5000). A 20000 x 20000 PNG compresses to a few
     * hundred KB and would need gigabytes decoded. Set with {@code -Drefldmseg.maxImagePixels=N}
     * or {@link #setMaxPixels}.
     */
    public static final long DEFAULT_MAX_PIXELS = 40_000_000L;
    private static volatile long maxPixels = Long.getLong("refldmseg.maxImagePixels", DEFAULT_MAX_PIXELS);

    public static long maxPixels() {
        return maxPixels;
    }

    public static void setMaxPixels(long pixels) {
        if (pixels <= 0 || pixels > Integer.MAX_VALUE / 3)
            throw new IllegalArgumentException("image pixel limit must be in 1.." + Integer.MAX_VALUE / 3 + ", got " + pixels);
        maxPixels = pixels;
    }

    /** Thrown for a missing or unreadable image; the message names the file. */
    public static final class ImageException extends RuntimeException {
        public ImageException(String message) {
            super(message);
        }
    }

    public static RgbImage readRgb(Path file) {
        return rgb(read(file));
    }

    /** An uploaded image's bytes ({@code name} labels it in messages); the same limits as for files. */
    public static RgbImage readRgb(byte[] bytes, String name) {
        return rgb(decode(bytes, name));
    }

    public static LabelMap readLabels(byte[] bytes, String name) {
        return labels(decode(bytes, name));
    }

    private static RgbImage rgb(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        byte[] rgb = new byte[Math.toIntExact((long) w * h * 3)]; // w x h is within maxPixels, checked before decoding
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int p = img.getRGB(x, y), o = (y * w + x) * 3;
                rgb[o] = (byte) (p >> 16);
                rgb[o + 1] = (byte) (p >> 8);
                rgb[o + 2] = (byte) p;
            }
        return new RgbImage(w, h, rgb);
    }

    /**
     * A mask file as labels: the first band of a grey or palette image (palette indices, as mmseg
     * label PNGs store them), or for colour images any non-black pixel as 255.
     */
    public static LabelMap readLabels(Path file) {
        return labels(read(file));
    }

    private static LabelMap labels(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        byte[] labels = new byte[w * h];
        boolean single = img.getRaster().getNumBands() <= 2 || img.getType() == BufferedImage.TYPE_BYTE_INDEXED
                || img.getType() == BufferedImage.TYPE_BYTE_BINARY;
        Raster r = img.getRaster();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int v = single ? r.getSample(x, y, 0) : ((img.getRGB(x, y) & 0xffffff) != 0 ? 255 : 0);
                if (img.getType() == BufferedImage.TYPE_BYTE_BINARY && v != 0) v = 255;
                labels[y * w + x] = (byte) Math.min(255, v);
            }
        return new LabelMap(w, h, labels);
    }

    private static BufferedImage read(Path file) {
        if (!Files.isRegularFile(file)) throw new ImageException(file + ": no such file");
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            return decode(in, file.toString());
        } catch (IOException e) {
            throw new ImageException(file + ": cannot read image: " + e.getMessage());
        }
    }

    private static BufferedImage decode(byte[] bytes, String name) {
        try (ImageInputStream in = ImageIO.createImageInputStream(new java.io.ByteArrayInputStream(bytes))) {
            return decode(in, name);
        } catch (IOException e) {
            throw new ImageException(name + ": cannot read image: " + e.getMessage());
        }
    }

    /** Checks the header's size against the pixel limit, then decodes. */
    private static BufferedImage decode(ImageInputStream in, String file) {
        try {
            java.util.Iterator<ImageReader> readers = in == null ? java.util.Collections.<ImageReader>emptyIterator() : ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new ImageException(file + ": not a readable image (PNG, JPEG, BMP, GIF are supported)");
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                long w = reader.getWidth(0), h = reader.getHeight(0);
                if (w <= 0 || h <= 0) throw new ImageException(file + ": image header says " + w + "x" + h + " pixels");
                if (w * h > maxPixels)
                    throw new ImageException(file + ": " + w + "x" + h + " is " + w * h + " pixels, more than the limit of " + maxPixels
                            + " (raise it with -Drefldmseg.maxImagePixels=N)");
                BufferedImage img = reader.read(0);
                if (img == null) throw new ImageException(file + ": not a readable image");
                return img;
            } finally {
                reader.dispose();
            }
        } catch (IOException e) {
            throw new ImageException(file + ": cannot read image: " + e.getMessage());
        } catch (ImageException e) {
            throw e;
        } catch (RuntimeException e) { // the JDK's decoders throw index and state exceptions on corrupt data
            throw new ImageException(file + ": corrupt image (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")");
        }
    }

    /** The mask as a black/white PNG (255 = object). */
    public static void writeMask(Path file, int width, int height, byte[] mask) throws IOException {
        write(file, maskImage(width, height, mask));
    }

    /** The same PNG as bytes (what the server answers). */
    public static byte[] maskPng(int width, int height, byte[] mask) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try {
            ImageIO.write(maskImage(width, height, mask), "png", out);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e); // in memory: cannot happen
        }
        return out.toByteArray();
    }

    private static BufferedImage maskImage(int width, int height, byte[] mask) {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY);
        byte[] px = new byte[width * height];
        for (int i = 0; i < px.length; i++) px[i] = (byte) (mask[i] != 0 ? 255 : 0);
        img.getRaster().setDataElements(0, 0, width, height, px);
        return img;
    }

    /** A label map as a grey PNG (label values as they are). */
    public static void writeLabels(Path file, int width, int height, byte[] labels) throws IOException {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY);
        img.getRaster().setDataElements(0, 0, width, height, labels.clone());
        write(file, img);
    }

    /** The query with the object tinted and its outline drawn: what a user looks at first. */
    public static void writeOverlay(Path file, RgbImage query, byte[] mask) throws IOException {
        int w = query.width(), h = query.height();
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int r = query.at(y, x, 0), g = query.at(y, x, 1), b = query.at(y, x, 2);
                boolean in = mask[y * w + x] != 0;
                boolean edge = in && (x == 0 || y == 0 || x == w - 1 || y == h - 1 || mask[y * w + x - 1] == 0
                        || mask[y * w + x + 1] == 0 || mask[(y - 1) * w + x] == 0 || mask[(y + 1) * w + x] == 0);
                if (edge) {
                    r = 255;
                    g = 255;
                    b = 0;
                } else if (in) {
                    r = (r + 255) / 2;
                    g = g / 2;
                    b = (b + 64) / 2;
                }
                img.setRGB(x, y, (r << 16) | (g << 8) | b);
            }
        write(file, img);
    }

    /** An RGB image as PNG, or as JPEG (the JDK's default quality) when the name ends in .jpg or .jpeg. */
    public static void writeRgb(Path file, RgbImage image) throws IOException {
        BufferedImage img = new BufferedImage(image.width(), image.height(), BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < image.height(); y++)
            for (int x = 0; x < image.width(); x++)
                img.setRGB(x, y, (image.at(y, x, 0) << 16) | (image.at(y, x, 1) << 8) | image.at(y, x, 2));
        String name = file.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
        write(file, img, name.endsWith(".jpg") || name.endsWith(".jpeg") ? "jpg" : "png");
    }

    private static void write(Path file, BufferedImage img) throws IOException {
        write(file, img, "png");
    }

    private static void write(Path file, BufferedImage img, String format) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        if (!ImageIO.write(img, format, file.toFile())) throw new IOException("no " + format + " writer");
    }
}
