package io.refldmseg.eval;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Segmentation metrics as the few-shot and video literature computes them. IoU per class is
 * accumulated over the class's episodes (sum of intersections / sum of unions, as mmseg and the
 * HSNet / FSS evaluators do), mIoU is its mean over classes, FB-IoU the mean of the accumulated
 * foreground and background IoU over all episodes. Pixels whose ground truth is the ignore label
 * count for nothing. For video, J is the region IoU and F the boundary F-measure of DAVIS (a
 * boundary pixel matches within a tolerance of ceil(0.008 x image diagonal) pixels).
 */
public final class Metrics {
    /** DAVIS's bound_th: boundary tolerance as a fraction of the image diagonal. */
    public static final double DAVIS_BOUND_FRACTION = 0.008;

    private final Map<String, long[]> perClass = new LinkedHashMap<>(); // class -> {intersection, union, episodes}
    private long fgI, fgU, bgI, bgU;
    private double jSum, fSum;
    private int episodes;

    /** Intersection and union of one prediction against its truth (1 = object), ignoring {@code ignore} in the truth (-1: none). */
    public record Overlap(long intersection, long union, long bgIntersection, long bgUnion) {
        /** IoU of the object; an empty prediction on an empty truth is a perfect 1. */
        public double iou() {
            return union == 0 ? 1.0 : (double) intersection / union;
        }
    }

    public static Overlap overlap(byte[] pred, byte[] truth, int ignore) {
        if (pred.length != truth.length) throw new IllegalArgumentException("prediction has " + pred.length + " pixels, truth " + truth.length);
        long i = 0, u = 0, bi = 0, bu = 0;
        for (int p = 0; p < pred.length; p++) {
            int t = truth[p] & 0xff;
            if (ignore >= 0 && t == ignore) continue;
            boolean P = pred[p] != 0, T = t != 0;
            if (P && T) i++;
            if (P || T) u++;
            if (!P && !T) bi++;
            if (!P || !T) bu++;
        }
        return new Overlap(i, u, bi, bu);
    }

    /** Adds one episode of class {@code cls}. */
    public Overlap add(String cls, byte[] pred, byte[] truth, int ignore) {
        Overlap o = overlap(pred, truth, ignore);
        long[] c = perClass.computeIfAbsent(cls, k -> new long[3]);
        c[0] += o.intersection();
        c[1] += o.union();
        c[2]++;
        fgI += o.intersection();
        fgU += o.union();
        bgI += o.bgIntersection();
        bgU += o.bgUnion();
        episodes++;
        return o;
    }

    /**
     * Adds one video frame: J is its IoU (labels 0 background, {@code ignore} ignored, any other
     * object), F the boundary measure of the object pixels; the frame also counts in the class IoUs.
     */
    public Overlap addFrame(String video, byte[] pred, byte[] truth, int width, int height, int ignore) {
        Overlap o = add(video, pred, truth, ignore);
        byte[] objects = new byte[truth.length];
        for (int i = 0; i < objects.length; i++) {
            int t = truth[i] & 0xff;
            objects[i] = (byte) (t != 0 && t != ignore ? 1 : 0);
        }
        jSum += o.iou();
        fSum += boundaryF(pred, objects, width, height);
        return o;
    }

    public Map<String, Double> perClassIoU() {
        Map<String, Double> out = new LinkedHashMap<>();
        perClass.forEach((k, c) -> out.put(k, c[1] == 0 ? 1.0 : (double) c[0] / c[1]));
        return out;
    }

    public Map<String, Long> episodesPerClass() {
        Map<String, Long> out = new LinkedHashMap<>();
        perClass.forEach((k, c) -> out.put(k, c[2]));
        return out;
    }

    public double mIoU() {
        return perClassIoU().values().stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
    }

    public double fbIoU() {
        double fg = fgU == 0 ? 1.0 : (double) fgI / fgU, bg = bgU == 0 ? 1.0 : (double) bgI / bgU;
        return (fg + bg) / 2;
    }

    public int episodes() {
        return episodes;
    }

    /** Mean J over the frames added with {@link #addFrame} (NaN if none). */
    public double j() {
        return jSum / episodes;
    }

    public double f() {
        return fSum / episodes;
    }

    /**
     * DAVIS boundary F-measure: boundary pixels of prediction and truth (object pixels with a
     * 4-neighbour outside), matched within a disc of ceil(0.008 x diagonal) pixels; F = 2PR / (P + R).
     * Both empty: 1; one empty: 0.
     */
    public static double boundaryF(byte[] pred, byte[] truth, int width, int height) {
        boolean[] bp = boundary(pred, width, height), bt = boundary(truth, width, height);
        int tol = (int) Math.ceil(DAVIS_BOUND_FRACTION * Math.hypot(width, height));
        long np = count(bp), nt = count(bt);
        if (np == 0 && nt == 0) return 1.0;
        if (np == 0 || nt == 0) return 0.0;
        boolean[] nearT = dilate(bt, width, height, tol), nearP = dilate(bp, width, height, tol);
        long matchedP = 0, matchedT = 0;
        for (int i = 0; i < bp.length; i++) {
            if (bp[i] && nearT[i]) matchedP++;
            if (bt[i] && nearP[i]) matchedT++;
        }
        double precision = (double) matchedP / np, recall = (double) matchedT / nt;
        return precision + recall == 0 ? 0.0 : 2 * precision * recall / (precision + recall);
    }

    static boolean[] boundary(byte[] m, int w, int h) {
        boolean[] b = new boolean[m.length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int i = y * w + x;
                if (m[i] == 0) continue;
                b[i] = x == 0 || y == 0 || x == w - 1 || y == h - 1 || m[i - 1] == 0 || m[i + 1] == 0 || m[i - w] == 0 || m[i + w] == 0;
            }
        return b;
    }

    /** Pixels within Euclidean distance {@code r} of a set pixel. */
    static boolean[] dilate(boolean[] b, int w, int h, int r) {
        boolean[] out = new boolean[b.length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                if (!b[y * w + x]) continue;
                for (int dy = -r; dy <= r; dy++) {
                    int yy = y + dy;
                    if (yy < 0 || yy >= h) continue;
                    int span = (int) Math.floor(Math.sqrt((double) r * r - dy * dy));
                    for (int xx = Math.max(0, x - span); xx <= Math.min(w - 1, x + span); xx++) out[yy * w + xx] = true;
                }
            }
        return out;
    }

    private static long count(boolean[] b) {
        long n = 0;
        for (boolean v : b) if (v) n++;
        return n;
    }
}
