package io.refldmseg.pipeline;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * Test-time augmentation by the symmetries of the square: a request also runs on quarter-turned
 * and mirrored copies of its query and supports (the support masks turned with them), each copy's
 * pseudo-mask logits are turned back onto the query and averaged, and the mask is decided from the
 * average as the pipeline decides it (foreground where channel 1 exceeds channel 0). Worth it where
 * the target does not depend on orientation (shapes, cells, textures; not text or upright scenes);
 * it costs one request per copy.
 */
public final class Augmentation {
    /** The copies a request can run as: 1 (none), 2, 4 or 8. */
    public static final List<Integer> COUNTS = List.of(1, 2, 4, 8);

    private Augmentation() {
    }

    /**
     * The transforms of n copies, each t in 0..7 (mirror left-right when t >= 4, then t % 4 quarter
     * turns clockwise): 1: the identity; 2: and the half turn; 4: the four quarter turns; 8: those
     * and their mirror images.
     */
    public static int[] transforms(int n) {
        return switch (n) {
            case 1 -> new int[]{0};
            case 2 -> new int[]{0, 2};
            case 4 -> new int[]{0, 1, 2, 3};
            case 8 -> new int[]{0, 1, 2, 3, 4, 5, 6, 7};
            default -> throw new IllegalArgumentException("test-time augmentation runs " + spelled(COUNTS) + " copies, not " + n);
        };
    }

    /** Width of an image of width w and height h after transform t (a quarter turn swaps them). */
    static int width(int t, int w, int h) {
        return t % 2 == 0 ? w : h;
    }

    /** Where pixel (y, x) of a w x h image lands under transform t, as y' * w' + x' in the transformed image. */
    static int target(int t, int w, int h, int y, int x) {
        if (t >= 4) x = w - 1 - x;
        for (int q = 0; q < t % 4; q++) { // a clockwise quarter turn: (y, x) of h rows -> (x, h - 1 - y), width and height swap
            int turnedY = x, turnedX = h - 1 - y;
            y = turnedY;
            x = turnedX;
            int rows = w;
            w = h;
            h = rows;
        }
        return y * w + x;
    }

    public static RgbImage apply(int t, RgbImage im) {
        int w = im.width(), h = im.height();
        byte[] out = new byte[im.rgb().length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int to = target(t, w, h, y, x) * 3, from = (y * w + x) * 3;
                out[to] = im.rgb()[from];
                out[to + 1] = im.rgb()[from + 1];
                out[to + 2] = im.rgb()[from + 2];
            }
        return new RgbImage(width(t, w, h), width(t, h, w), out);
    }

    public static LabelMap apply(int t, LabelMap m) {
        int w = m.width(), h = m.height();
        byte[] out = new byte[m.labels().length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) out[target(t, w, h, y, x)] = m.labels()[y * w + x];
        return new LabelMap(width(t, w, h), width(t, h, w), out);
    }

    /** The request as copy t sees it: query and supports (images and masks) transformed alike. */
    public static Request apply(int t, Request r) {
        List<Support> supports = new ArrayList<>();
        for (Support s : r.supports()) supports.add(new Support(apply(t, s.image()), apply(t, s.mask())));
        return new Request(apply(t, r.query()), supports, r.options());
    }

    /**
     * Support views a request can ask for: 1 (none); 2, 4 or 8: each support also turned and mirrored
     * as {@link #transforms} lists; 16 or 32: those of the support and of 1 or 3 copies of it shifted by
     * half a token cell (both ways; across, down and both ways).
     */
    public static final List<Integer> VIEW_COUNTS = List.of(1, 2, 4, 8, 16, 32);

    /**
     * Every support replaced by {@code views} views of it, all to be passed as shots: the
     * instruction the UNet attends to then holds each support's tokens seen in every orientation and
     * at several offsets against the tower's patch grid, so it depends less on how one orientation or
     * placement tokenizes. Only the prompt grows (tower forwards and cross-attention keys, views times);
     * the query runs once. {@code grid} is the tower's token grid (tokens a side); a shift is half a
     * cell of it in the support's pixels, content moved right / down with the vacated border mirrored.
     * The first view is the support itself; the others are made from it reduced to at most {@link
     * #VIEW_SIDE} pixels a side (block means; the mask's block centres), so that 32 views of a large
     * photo do not hold 32 full-size copies.
     */
    public static List<Support> supportViews(List<Support> supports, int views, int grid) {
        if (!VIEW_COUNTS.contains(views)) throw new IllegalArgumentException("support views must be " + spelled(VIEW_COUNTS) + ", not " + views);
        if (grid < 1) throw new IllegalArgumentException("token grid must be positive, got " + grid);
        if (views == 1) return supports;
        int[] ts = transforms(Math.min(views, 8));
        List<Support> out = new ArrayList<>();
        for (Support given : supports) {
            Support s = reduced(given);
            int dy = (int) Math.round(s.image().height() / (2.0 * grid)), dx = (int) Math.round(s.image().width() / (2.0 * grid));
            int[][] shifts = switch (views) {
                case 16 -> new int[][]{{0, 0}, {dy, dx}};
                case 32 -> new int[][]{{0, 0}, {0, dx}, {dy, 0}, {dy, dx}};
                default -> new int[][]{{0, 0}};
            };
            for (int[] d : shifts) {
                Support moved = d[0] == 0 && d[1] == 0 ? s : new Support(shift(s.image(), d[0], d[1]), shift(s.mask(), d[0], d[1]));
                for (int t : ts) out.add(t == 0 ? (moved == s ? given : moved) : new Support(apply(t, moved.image()), apply(t, moved.mask())));
            }
        }
        return out;
    }

    /** The allowed counts as a message names them: "1, 2, 4 or 8". */
    public static String spelled(List<Integer> counts) {
        List<String> names = counts.stream().map(String::valueOf).toList();
        return names.size() == 1 ? names.getFirst() : String.join(", ", names.subList(0, names.size() - 1)) + " or " + names.getLast();
    }

    /** The request with its supports replaced by {@link #supportViews} of them (itself for 1 view). */
    public static Request withSupportViews(Request r, int views, int grid) {
        List<Support> viewed = supportViews(r.supports(), views, grid);
        return viewed == r.supports() ? r : new Request(r.query(), viewed, r.options());
    }

    /** The longest side views other than the first are made at: twice the pipeline's working size. */
    public static final int VIEW_SIDE = 2 * RefLdmSeg.SIZE;

    /** The support shrunk by the smallest whole factor that brings both sides to VIEW_SIDE or under (itself when they are). */
    static Support reduced(Support s) {
        int w = s.image().width(), h = s.image().height(), f = (Math.max(w, h) + VIEW_SIDE - 1) / VIEW_SIDE;
        if (f <= 1) return s;
        int rw = Math.max(1, w / f), rh = Math.max(1, h / f);
        byte[] rgb = new byte[rw * rh * 3], labels = new byte[rw * rh];
        for (int y = 0; y < rh; y++)
            for (int x = 0; x < rw; x++) {
                int y1 = Math.min(h, (y + 1) * f), x1 = Math.min(w, (x + 1) * f), n = (y1 - y * f) * (x1 - x * f);
                for (int c = 0; c < 3; c++) {
                    int sum = 0;
                    for (int yy = y * f; yy < y1; yy++)
                        for (int xx = x * f; xx < x1; xx++) sum += s.image().rgb()[(yy * w + xx) * 3 + c] & 0xff;
                    rgb[(y * rw + x) * 3 + c] = (byte) ((sum + n / 2) / n);
                }
                labels[y * rw + x] = s.mask().labels()[Math.min(h - 1, y * f + f / 2) * w + Math.min(w - 1, x * f + f / 2)];
            }
        return new Support(new RgbImage(rw, rh, rgb), new LabelMap(rw, rh, labels));
    }

    /** The source of output index i in a line of n whose content moves by d: mirrored at the ends, the end pixel not repeated. */
    private static int reflect(int i, int d, int n) {
        int j = i - d;
        if (j < 0) j = -j;
        if (j >= n) j = 2 * (n - 1) - j;
        return Math.clamp(j, 0, n - 1);
    }

    /** The image moved down by dy and right by dx (each under its side), the border it leaves mirrored. */
    static RgbImage shift(RgbImage im, int dy, int dx) {
        int w = im.width(), h = im.height();
        byte[] out = new byte[im.rgb().length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) System.arraycopy(im.rgb(), (reflect(y, dy, h) * w + reflect(x, dx, w)) * 3, out, (y * w + x) * 3, 3);
        return new RgbImage(w, h, out);
    }

    /** A mask moved as {@link #shift(RgbImage, int, int)} moves its image. */
    static LabelMap shift(LabelMap m, int dy, int dx) {
        int w = m.width(), h = m.height();
        byte[] out = new byte[m.labels().length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) out[y * w + x] = m.labels()[reflect(y, dy, h) * w + reflect(x, dx, w)];
        return new LabelMap(w, h, out);
    }

    /** The n copies of a request, in the order of {@link #transforms}. */
    public static List<Request> copies(Request r, int n) {
        if (n > 1 && r.options().noise() != null)
            throw new IllegalArgumentException("test-time augmentation cannot reuse given noise tensors: their shapes are the query's, not its turned copies'");
        List<Request> copies = new ArrayList<>();
        for (int t : transforms(n)) copies.add(t == 0 ? r : apply(t, r));
        return copies;
    }

    /**
     * One result for a w x h query from the results of its copies (in the order of {@link
     * #transforms}): the logits turned back and averaged, the mask decided from them, the timings
     * summed; no intermediates.
     */
    public static Result combine(int w, int h, List<Result> copies) {
        int[] ts = transforms(copies.size());
        if (copies.size() == 1) return copies.getFirst();
        int px = w * h;
        float[] sum = new float[3 * px];
        long prompt = 0, encode = 0, unet = 0, decode = 0, total = 0;
        for (int i = 0; i < ts.length; i++) {
            Result r = copies.get(i);
            if (r.width() != width(ts[i], w, h) || r.logits().length != 3 * px)
                throw new IllegalArgumentException("copy " + i + " is " + r.width() + "x" + r.height() + ", not the query's " + w + "x" + h + " turned by transform " + ts[i]);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int at = target(ts[i], w, h, y, x), to = y * w + x;
                    for (int c = 0; c < 3; c++) sum[c * px + to] += r.logits()[c * px + at];
                }
            prompt += r.timings().promptMillis();
            encode += r.timings().encodeMillis();
            unet += r.timings().unetMillis();
            decode += r.timings().decodeMillis();
            total += r.timings().totalMillis();
        }
        byte[] mask = new byte[px];
        for (int i = 0; i < 3 * px; i++) sum[i] /= ts.length; // a power of two: exact, so the decision is the sums'
        for (int i = 0; i < px; i++) mask[i] = (byte) (sum[px + i] > sum[i] ? 1 : 0);
        return new Result(w, h, mask, sum, Map.of(), new Result.Timings(prompt, encode, unet, decode, total));
    }

    /** A request through the service, from its n copies submitted together (so it may batch them) when n > 1. */
    public static CompletableFuture<Segmenter.Done> submit(Segmenter segmenter, Request r, int n) {
        return submit(r, n, segmenter::submit);
    }

    /** The same with a deadline for each copy. */
    public static CompletableFuture<Segmenter.Done> submit(Segmenter segmenter, Request r, int n, Duration deadline) {
        return submit(r, n, copy -> segmenter.submit(copy, deadline));
    }

    /**
     * The copies' answers as one: combined results, the longest queue wait, cached only when every
     * copy's prompt was. A copy the service refuses (a full queue) cancels the copies queued before it.
     */
    private static CompletableFuture<Segmenter.Done> submit(Request r, int n, Function<Request, CompletableFuture<Segmenter.Done>> submit) {
        if (n == 1) return submit.apply(r);
        List<CompletableFuture<Segmenter.Done>> parts = new ArrayList<>();
        try {
            for (Request copy : copies(r, n)) parts.add(submit.apply(copy));
        } catch (RuntimeException e) {
            parts.forEach(p -> p.cancel(false));
            throw e;
        }
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new)).thenApply(ignored -> {
            List<Segmenter.Done> done = parts.stream().map(CompletableFuture::join).toList();
            return new Segmenter.Done(combine(r.query().width(), r.query().height(), done.stream().map(Segmenter.Done::result).toList()),
                    done.stream().mapToLong(Segmenter.Done::queueMillis).max().orElse(0), done.stream().allMatch(Segmenter.Done::promptCached));
        });
    }

    /** A request segmented as n copies, one after another on one engine. */
    public static Result segment(RefLdmSeg seg, Request r, int n) {
        List<Result> results = new ArrayList<>();
        for (Request copy : copies(r, n)) results.add(seg.segment(copy));
        return combine(r.query().width(), r.query().height(), results);
    }
}
