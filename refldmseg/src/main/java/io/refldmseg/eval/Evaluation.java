package io.refldmseg.eval;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.refldmseg.pipeline.Augmentation;
import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.LabelMap;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.Request;
import io.refldmseg.pipeline.Result;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Segmenter;
import io.refldmseg.pipeline.Support;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.IntConsumer;

/**
 * Runs episodes through a {@link Segmenter} and scores them: report.json (miou, fbiou, per_class,
 * episodes, and j / f / jf for video), report.csv (one row per episode), pred/&lt;i&gt;.png, and
 * contact_sheet.png of the worst and best episodes (query, support with its mask, prediction,
 * ground truth).
 */
public final class Evaluation {
    /** What one episode scored. */
    public record Scored(int index, Episodes.Episode episode, double iou, long intersection, long union) {
    }

    public record Report(Metrics metrics, List<Scored> episodes) {
    }

    private Evaluation() {
    }

    /**
     * @param copies each episode as this many turned / mirrored copies, their logits averaged ({@link Augmentation}; 1: none)
     * @param views  each support passed as this many views of it ({@link Augmentation#withSupportViews}; 1: none)
     * @param ignore ground-truth label that counts for nothing (255 for mmseg/PASCAL label maps, -1 none)
     */
    public static Report run(Segmenter segmenter, List<Episodes.Episode> episodes, Options options, int copies, int views, int ignore, Path out,
                             IntConsumer progress) throws IOException, InterruptedException {
        Files.createDirectories(out.resolve("pred"));
        Metrics metrics = new Metrics();
        List<Scored> scored = new ArrayList<>();
        Deque<CompletableFuture<Result>> inFlight = new ArrayDeque<>();
        int next = 0, done = 0, grid = segmenter.engines().getFirst().tokenGrid();
        while (done < episodes.size()) {
            while (next < episodes.size() && inFlight.size() < Math.max(4, 2 * segmenter.engines().size())) inFlight.add(Augmentation.submit(segmenter, Augmentation.withSupportViews(request(episodes.get(next++), options), views, grid), copies).thenApply(Segmenter.Done::result));
            Episodes.Episode e = episodes.get(done);
            Result r;
            try {
                r = inFlight.poll().get();
            } catch (ExecutionException ex) {
                throw new IllegalStateException("episode " + done + " (" + e.query() + "): " + ex.getCause().getMessage(), ex.getCause());
            }
            LabelMap truth = e.mask(e.truth());
            if (truth.width() != r.width() || truth.height() != r.height())
                throw new IllegalArgumentException(e.truth() + " is " + truth.width() + "x" + truth.height() + " but its query " + e.query()
                        + " is " + r.width() + "x" + r.height());
            Metrics.Overlap o = e.video() ? metrics.addFrame(e.cls(), r.mask(), truth.labels(), r.width(), r.height(), ignore)
                    : metrics.add(e.cls(), r.mask(), truth.labels(), ignore);
            scored.add(new Scored(done, e, o.iou(), o.intersection(), o.union()));
            ImageFiles.writeMask(out.resolve("pred/" + done + ".png"), r.width(), r.height(), r.mask());
            done++;
            progress.accept(done);
        }
        Report report = new Report(metrics, scored);
        writeJson(out.resolve("report.json"), report);
        writeCsv(out.resolve("report.csv"), report);
        contactSheet(out.resolve("contact_sheet.png"), report, out);
        return report;
    }

    static Request request(Episodes.Episode e, Options options) {
        List<Support> shots = new ArrayList<>();
        for (int i = 0; i < e.supports().size(); i++)
            shots.add(new Support(ImageFiles.readRgb(e.supports().get(i)), supportMask(e, e.supportMasks().get(i))));
        return new Request(ImageFiles.readRgb(e.query()), shots, options);
    }

    /** A support's mask: 255 (ignore) in a label map is background for the prompt. */
    private static LabelMap supportMask(Episodes.Episode e, Path file) {
        LabelMap m = e.mask(file);
        if (e.labelClass() < 0) return m;
        byte[] b = m.labels().clone();
        for (int i = 0; i < b.length; i++) if ((b[i] & 0xff) == 255) b[i] = 0;
        return new LabelMap(m.width(), m.height(), b);
    }

    static void writeJson(Path file, Report r) throws IOException {
        Metrics m = r.metrics();
        try (Writer w = Files.newBufferedWriter(file); JsonGenerator g = new JsonFactory().createGenerator(w)) {
            g.useDefaultPrettyPrinter();
            g.writeStartObject();
            g.writeNumberField("miou", m.mIoU());
            g.writeNumberField("fbiou", m.fbIoU());
            g.writeNumberField("episodes", m.episodes());
            if (r.episodes().stream().anyMatch(s -> s.episode().video())) {
                g.writeNumberField("j", m.j());
                g.writeNumberField("f", m.f());
                g.writeNumberField("jf", (m.j() + m.f()) / 2);
            }
            g.writeObjectFieldStart("per_class");
            for (Map.Entry<String, Double> e : m.perClassIoU().entrySet()) g.writeNumberField(e.getKey(), e.getValue());
            g.writeEndObject();
            g.writeObjectFieldStart("episodes_per_class");
            for (Map.Entry<String, Long> e : m.episodesPerClass().entrySet()) g.writeNumberField(e.getKey(), e.getValue());
            g.writeEndObject();
            g.writeEndObject();
        }
    }

    static void writeCsv(Path file, Report r) throws IOException {
        StringBuilder b = new StringBuilder("episode,class,iou,intersection,union,query,truth,supports\n");
        for (Scored s : r.episodes())
            b.append(s.index()).append(',').append(csv(s.episode().cls())).append(',').append(String.format("%.6f", s.iou())).append(',')
                    .append(s.intersection()).append(',').append(s.union()).append(',').append(csv(s.episode().query().toString())).append(',')
                    .append(csv(s.episode().truth().toString())).append(',')
                    .append(csv(String.join(";", s.episode().supports().stream().map(Path::toString).toList()))).append('\n');
        Files.writeString(file, b);
    }

    private static String csv(String s) {
        return s.contains(",") || s.contains("\"") ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
    }

    /** Rows of the worst and best four episodes: query | support + mask | prediction | ground truth. */
    static void contactSheet(Path file, Report r, Path out) throws IOException {
        List<Scored> sorted = new ArrayList<>(r.episodes());
        sorted.sort(Comparator.comparingDouble(Scored::iou));
        List<Scored> rows = new ArrayList<>(sorted.subList(0, Math.min(4, sorted.size())));
        for (int i = Math.max(rows.size(), sorted.size() - 4); i < sorted.size(); i++) rows.add(sorted.get(i));
        int tile = 128, label = 16;
        BufferedImage sheet = new BufferedImage(4 * tile, rows.size() * (tile + label), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = sheet.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, sheet.getWidth(), sheet.getHeight());
        for (int row = 0; row < rows.size(); row++) {
            Scored s = rows.get(row);
            Episodes.Episode e = s.episode();
            RgbImage q = ImageFiles.readRgb(e.query()), sup = ImageFiles.readRgb(e.supports().getFirst());
            byte[] pred = ImageFiles.readLabels(out.resolve("pred/" + s.index() + ".png")).labels();
            byte[] supMask = supportMask(e, e.supportMasks().getFirst()).labels(), truth = e.mask(e.truth()).labels();
            BufferedImage[] tiles = {picture(q, null), picture(sup, supMask), picture(q, pred), picture(q, truth)};
            int y = row * (tile + label);
            for (int c = 0; c < 4; c++) g.drawImage(tiles[c], c * tile + 1, y + 1, tile - 2, tile - 2, null);
            g.setColor(Color.BLACK);
            g.drawString(String.format("#%d %s IoU %.3f (query | support | prediction | truth)", s.index(), e.cls(), s.iou()), 3, y + tile + 12);
        }
        g.dispose();
        ImageIO.write(sheet, "png", file.toFile());
    }

    /** The image with {@code mask} (non-zero = object) tinted red with a yellow outline, or plain. */
    private static BufferedImage picture(RgbImage img, byte[] mask) {
        BufferedImage b = new BufferedImage(img.width(), img.height(), BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < img.height(); y++)
            for (int x = 0; x < img.width(); x++) {
                int r = img.at(y, x, 0), gg = img.at(y, x, 1), bb = img.at(y, x, 2);
                int w = img.width(), i = y * w + x;
                if (mask != null && mask[i] != 0) {
                    boolean edge = x == 0 || y == 0 || x == w - 1 || y == img.height() - 1 || mask[i - 1] == 0 || mask[i + 1] == 0
                            || mask[i - w] == 0 || mask[i + w] == 0;
                    r = edge ? 255 : (r + 255) / 2;
                    gg = edge ? 255 : gg / 3;
                    bb = edge ? 0 : bb / 3;
                }
                b.setRGB(x, y, (r << 16) | (gg << 8) | bb);
            }
        return b;
    }
}
