package io.refldmseg.eval;

import io.refldmseg.pipeline.RgbImage;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The synthetic in-context domain: 256 x 256 scenes, a random linear colour gradient with
 * per-pixel Gaussian noise (sigma up to 12 grey levels) behind 2-6 objects, each one of five
 * kinds (filled disc, filled square, filled triangle, ring, plus sign) in a random colour, size
 * 24-80 px, position and rotation; objects may overlap (later ones on top). A kind's mask is every
 * visible pixel of the objects of that kind. Colour is independent of kind: the kind defines the
 * target. Scene {@code i} of seed {@code s} is always the same picture.
 */
public final class SyntheticScenes {
    public static final int SIZE = 256;
    public static final List<String> KINDS = List.of("disc", "square", "triangle", "ring", "plus");
    /** Fewer visible pixels than this (an object almost covered by others) do not count as showing the kind. */
    public static final int MIN_VISIBLE = 64;

    /** One scene: the picture and, per pixel, the kind index of the object on top (-1 = background). */
    public record Scene(RgbImage image, byte[] kindMap) {
        /** The mask (1 = object) of every object of {@code kind}. */
        public byte[] mask(int kind) {
            byte[] m = new byte[kindMap.length];
            for (int i = 0; i < m.length; i++) m[i] = (byte) (kindMap[i] == kind ? 1 : 0);
            return m;
        }

        /** The scene shows {@code kind}: at least {@link #MIN_VISIBLE} of its pixels are on top. */
        public boolean contains(int kind) {
            int n = 0;
            for (byte b : kindMap) if (b == kind && ++n >= MIN_VISIBLE) return true;
            return false;
        }

        /** The lowest kind the scene {@linkplain #contains shows}; the last kind when it shows none of the others. */
        public int firstKind() {
            int kind = 0;
            while (kind < KINDS.size() - 1 && !contains(kind)) kind++;
            return kind;
        }
    }

    private SyntheticScenes() {
    }

    public static Scene scene(long seed, int index) {
        Random r = new Random(seed * 1_000_003L + index);
        int n = SIZE;
        float[] rgb = new float[n * n * 3];
        float[] c0 = randomColour(r), c1 = randomColour(r);
        double angle = r.nextDouble() * Math.PI * 2, gx = Math.cos(angle), gy = Math.sin(angle);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                double t = Math.max(0, Math.min(1, 0.5 + ((x - n / 2.0) * gx + (y - n / 2.0) * gy) / n));
                for (int c = 0; c < 3; c++) rgb[(y * n + x) * 3 + c] = (float) (c0[c] * (1 - t) + c1[c] * t);
            }
        byte[] kinds = new byte[n * n];
        java.util.Arrays.fill(kinds, (byte) -1);
        int objects = 2 + r.nextInt(5);
        for (int o = 0; o < objects; o++) {
            int kind = r.nextInt(KINDS.size());
            double size = 24 + r.nextDouble() * 56, half = size / 2, cx = half + r.nextDouble() * (n - size), cy = half + r.nextDouble() * (n - size);
            double rot = r.nextDouble() * Math.PI * 2, cos = Math.cos(rot), sin = Math.sin(rot);
            float[] colour = randomColour(r);
            for (int y = (int) (cy - half) - 1; y <= cy + half + 1; y++)
                for (int x = (int) (cx - half) - 1; x <= cx + half + 1; x++) {
                    if (x < 0 || y < 0 || x >= n || y >= n) continue;
                    double dx = x + 0.5 - cx, dy = y + 0.5 - cy, u = (dx * cos + dy * sin) / half, v = (-dx * sin + dy * cos) / half;
                    if (!inside(kind, u, v)) continue;
                    kinds[y * n + x] = (byte) kind;
                    for (int c = 0; c < 3; c++) rgb[(y * n + x) * 3 + c] = colour[c];
                }
        }
        double sigma = r.nextDouble() * 12;
        byte[] out = new byte[n * n * 3];
        for (int i = 0; i < out.length; i++) out[i] = (byte) Math.max(0, Math.min(255, Math.round(rgb[i] + r.nextGaussian() * sigma)));
        return new Scene(new RgbImage(n, n, out), kinds);
    }

    /** Shape tests in the object's own frame, coordinates in [-1, 1]. */
    static boolean inside(int kind, double u, double v) {
        return switch (kind) {
            case 0 -> u * u + v * v <= 1; // disc
            case 1 -> Math.abs(u) <= 0.8 && Math.abs(v) <= 0.8; // square
            case 2 -> v >= -1 && v <= 0.8 && Math.abs(u) <= (v + 1) / 1.8 * 0.95; // triangle, apex at v = -1
            case 3 -> { // ring
                double d = u * u + v * v;
                yield d <= 1 && d >= 0.45;
            }
            case 4 -> (Math.abs(u) <= 0.28 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.28 && Math.abs(u) <= 1); // plus
            default -> throw new IllegalArgumentException("kind " + kind);
        };
    }

    private static float[] randomColour(Random r) {
        return new float[]{r.nextInt(256), r.nextInt(256), r.nextInt(256)};
    }

    /** The scenes [0, count) of {@code seed} that show {@code kind}. */
    public static List<Integer> showing(long seed, int count, int kind) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < count; i++) if (scene(seed, i).contains(kind)) out.add(i);
        return out;
    }
}
