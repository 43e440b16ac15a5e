package io.refldmseg.pipeline;

import io.refldmseg.engine.Tensor;
import io.refldmseg.model.AttentionProcessor;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Cross-attention maps a person can read: for each UNet cross-attention layer, the attention
 * mass each query position puts on the support's foreground tokens (keys whose key mask is 1),
 * averaged over heads (and over steps for -n; the TEXT row only), drawn as a heat map over the
 * query. Collect with {@link #record}, then {@link #write} one overlay PNG per layer, one of the
 * mean over layers, and a contact sheet of all of them.
 */
public final class AttentionMaps {
    private final Map<String, float[]> sums = new LinkedHashMap<>();
    private final Map<String, Integer> counts = new LinkedHashMap<>();

    /** A {@link io.refldmseg.model.MaskedAttention.Recorder} body: adds this call's foreground mass map of batch row 0. */
    public synchronized void record(AttentionProcessor.Call call, Tensor probabilities) {
        if (call.keyMask() == null) return;
        int heads = probabilities.dim(1), lq = probabilities.dim(2), lk = probabilities.dim(3);
        float[] p = call.backend().toHost(probabilities), mask = call.backend().toHost(call.keyMask());
        float[] sum = sums.computeIfAbsent(call.layer().name(), k -> new float[lq]);
        for (int h = 0; h < heads; h++)
            for (int q = 0; q < lq; q++) {
                int o = (h * lq + q) * lk;
                double mass = 0;
                for (int k = 0; k < lk; k++) if (mask[k] != 0f) mass += p[o + k];
                sum[q] += (float) (mass / heads);
            }
        counts.merge(call.layer().name(), 1, Integer::sum);
    }

    /** The mean map of each layer so far, [side x side] row-major over the latent grid of the model square. */
    public synchronized Map<String, float[]> maps() {
        Map<String, float[]> out = new LinkedHashMap<>();
        sums.forEach((name, s) -> {
            float[] m = s.clone();
            int n = counts.get(name);
            for (int i = 0; i < m.length; i++) m[i] /= n;
            out.put(name, m);
        });
        return out;
    }

    /** Writes {@code <layer>.png} per layer, {@code mean.png} and {@code contact_sheet.png} into {@code dir}; returns the number of pictures. */
    public int write(Path dir, RgbImage query, int modelSize) throws IOException {
        Map<String, float[]> maps = maps();
        if (maps.isEmpty()) return 0;
        Files.createDirectories(dir);
        Map<String, float[]> atQuery = new LinkedHashMap<>();
        float[] mean = new float[query.width() * query.height()];
        for (Map.Entry<String, float[]> e : maps.entrySet()) {
            float[] m = toQuery(e.getValue(), query.width(), query.height(), modelSize);
            atQuery.put(e.getKey(), m);
            for (int i = 0; i < mean.length; i++) mean[i] += m[i] / maps.size();
        }
        atQuery.put("mean", mean);
        Map<String, BufferedImage> pictures = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : atQuery.entrySet()) {
            BufferedImage img = overlay(query, e.getValue());
            pictures.put(e.getKey(), img);
            ImageIO.write(img, "png", dir.resolve(e.getKey() + ".png").toFile());
        }
        ImageIO.write(contactSheet(pictures), "png", dir.resolve("contact_sheet.png").toFile());
        return pictures.size() + 1;
    }

    /** A side x side map over the padded model square, upsampled to it, cropped to the query's fit and resized to the query. */
    static float[] toQuery(float[] grid, int w, int h, int modelSize) {
        int side = (int) Math.round(Math.sqrt(grid.length));
        if (side * side != grid.length) throw new IllegalArgumentException("attention map of " + grid.length + " positions is not square");
        Preprocess.Geometry g = new Preprocess(null, modelSize).geometry(w, h);
        float[] out = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                // query pixel -> model-square pixel -> grid coordinate (cell centres at (i + 0.5) * cell)
                double my = (y + 0.5) * g.fitH() / h, mx = (x + 0.5) * g.fitW() / w;
                double gy = my * side / modelSize - 0.5, gx = mx * side / modelSize - 0.5;
                out[y * w + x] = bilinear(grid, side, gy, gx);
            }
        return out;
    }

    private static float bilinear(float[] g, int side, double y, double x) {
        y = Math.max(0, Math.min(side - 1, y));
        x = Math.max(0, Math.min(side - 1, x));
        int y0 = (int) y, x0 = (int) x, y1 = Math.min(side - 1, y0 + 1), x1 = Math.min(side - 1, x0 + 1);
        double fy = y - y0, fx = x - x0;
        return (float) ((1 - fy) * ((1 - fx) * g[y0 * side + x0] + fx * g[y0 * side + x1]) + fy * ((1 - fx) * g[y1 * side + x0] + fx * g[y1 * side + x1]));
    }

    /** The query blended half and half with a heat colour spanning the map's range (min black, max white). */
    static BufferedImage overlay(RgbImage query, float[] map) {
        int w = query.width(), h = query.height();
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (float v : map) {
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        float range = Math.max(max - min, 1e-12f);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float t = (map[y * w + x] - min) / range;
                int heat = heat(t);
                int r = (query.at(y, x, 0) + ((heat >> 16) & 0xff)) / 2, g = (query.at(y, x, 1) + ((heat >> 8) & 0xff)) / 2,
                        b = (query.at(y, x, 2) + (heat & 0xff)) / 2;
                img.setRGB(x, y, (r << 16) | (g << 8) | b);
            }
        return img;
    }

    /** The "hot" colour map: black - red - yellow - white as t goes 0 -> 1. */
    static int heat(float t) {
        float c = Math.max(0f, Math.min(1f, t)) * 3f;
        int r = (int) (255 * Math.min(1f, c)), g = (int) (255 * Math.max(0f, Math.min(1f, c - 1f))), b = (int) (255 * Math.max(0f, Math.min(1f, c - 2f)));
        return (r << 16) | (g << 8) | b;
    }

    private static BufferedImage contactSheet(Map<String, BufferedImage> pictures) {
        int tile = 160, label = 28, cols = (int) Math.ceil(Math.sqrt(pictures.size())), rows = (pictures.size() + cols - 1) / cols;
        BufferedImage sheet = new BufferedImage(cols * tile, rows * (tile + label), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = sheet.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, sheet.getWidth(), sheet.getHeight());
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 9));
        int i = 0;
        for (Map.Entry<String, BufferedImage> e : pictures.entrySet()) {
            int x = (i % cols) * tile, y = (i / cols) * (tile + label);
            g.drawImage(e.getValue(), x + 2, y + 2, tile - 4, tile - 4, null);
            g.setColor(Color.BLACK);
            String name = e.getKey().replace("transformer_blocks.", "tb").replace("attentions.", "a").replace("_blocks.", ".");
            g.drawString(name, x + 3, y + tile + 10);
            i++;
        }
        g.dispose();
        return sheet;
    }
}
