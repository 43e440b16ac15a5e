package io.refldmseg.cli;

import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.Json;
import io.refldmseg.pipeline.ImageFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** synth and evaluate end to end with the tiny random models (the scores are meaningless; the files and fields are checked). */
class EvaluateTest {
    @TempDir
    Path dir;

    static String[] models(String... rest) {
        String[] m = {"--unet", Fixtures.file("unet_diffusers.safetensors").toString(), "--vae", Fixtures.file("vae_diffusers.safetensors").toString(),
                "--clip", Fixtures.file("alphaclip_visual.safetensors").toString()};
        String[] all = new String[rest.length + m.length];
        System.arraycopy(rest, 0, all, 0, 1);
        System.arraycopy(m, 0, all, 1, m.length);
        System.arraycopy(rest, 1, all, 1 + m.length, rest.length - 1);
        return all;
    }

    static int run(String... args) {
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(err, true), args);
        if (code != 0) System.err.println(err);
        return code;
    }

    @Test
    @SuppressWarnings("unchecked")
    void synthThenEvaluateWritesTheReport() throws Exception {
        Path data = dir.resolve("synth"), out = dir.resolve("eval");
        assertEquals(0, run("synth", "--out", data.toString(), "--scenes", "16", "--seed", "5"));
        for (String k : io.refldmseg.eval.SyntheticScenes.KINDS) assertTrue(Files.isDirectory(data.resolve(k)), k);
        assertEquals(0, run(models("evaluate", "--dataset", data.toString(), "--episodes", "5", "--out", out.toString())));
        Map<String, Object> report = (Map<String, Object>) Json.parse(Files.readString(out.resolve("report.json")));
        assertTrue(report.keySet().containsAll(java.util.List.of("miou", "fbiou", "per_class", "episodes")), report.toString());
        assertEquals(5, ((Number) report.get("episodes")).intValue());
        assertEquals(5, ((Map<?, ?>) report.get("per_class")).size(), "5 episodes, the 5 kinds in turn");
        for (int i = 0; i < 5; i++) assertEquals(256, ImageFiles.readLabels(out.resolve("pred/" + i + ".png")).width());
        assertEquals(6, Files.readAllLines(out.resolve("report.csv")).size(), "header + 5 rows");
        assertTrue(Files.size(out.resolve("contact_sheet.png")) > 0);
        // the same seed draws the same episodes
        Path again = dir.resolve("eval2");
        assertEquals(0, run(models("evaluate", "--dataset", data.toString(), "--episodes", "5", "--out", again.toString())));
        assertEquals(Files.readString(out.resolve("report.csv")).replace(out.toString(), ""), Files.readString(again.resolve("report.csv")).replace(again.toString(), ""));
    }

    /** --tta runs every episode as turned copies through the service and scores their averaged masks; a count it does not take is refused. */
    @Test
    @SuppressWarnings("unchecked")
    void evaluateWithTestTimeAugmentation() throws Exception {
        Path data = dir.resolve("synth_tta"), out = dir.resolve("eval_tta");
        assertEquals(0, run("synth", "--out", data.toString(), "--scenes", "10", "--seed", "6"));
        assertEquals(0, run(models("evaluate", "--dataset", data.toString(), "--episodes", "3", "--tta", "4", "--out", out.toString())));
        Map<String, Object> report = (Map<String, Object>) Json.parse(Files.readString(out.resolve("report.json")));
        assertEquals(3, ((Number) report.get("episodes")).intValue());
        for (int i = 0; i < 3; i++) assertEquals(256, ImageFiles.readLabels(out.resolve("pred/" + i + ".png")).width());
        assertEquals(2, run(models("evaluate", "--dataset", data.toString(), "--episodes", "3", "--tta", "5", "--out", dir.resolve("bad").toString())));
        Path views = dir.resolve("eval_views");
        assertEquals(0, run(models("evaluate", "--dataset", data.toString(), "--episodes", "3", "--support-views", "16", "--out", views.toString())));
        assertEquals(3, ((Number) ((Map<String, Object>) Json.parse(Files.readString(views.resolve("report.json")))).get("episodes")).intValue());
        assertEquals(2, run(models("evaluate", "--dataset", data.toString(), "--episodes", "3", "--support-views", "3", "--out", dir.resolve("bad").toString())));
    }

    /** Without model options evaluate uses the bundled model, which segments its own domain (held-out seed 5, never trained on). */
    @Test
    @SuppressWarnings("unchecked")
    void theBundledModelScoresOnHeldOutScenes() throws Exception {
        Path data = dir.resolve("held_out"), out = dir.resolve("bundled_eval");
        assertEquals(0, run("synth", "--out", data.toString(), "--scenes", "40", "--seed", "5"));
        assertEquals(0, run("evaluate", "--dataset", data.toString(), "--episodes", "20", "--out", out.toString()));
        Map<String, Object> report = (Map<String, Object>) Json.parse(Files.readString(out.resolve("report.json")));
        double miou = ((Number) report.get("miou")).doubleValue();
        assertTrue(miou >= BUNDLED_MIOU_FLOOR, "bundled model mIoU on 20 held-out episodes: " + miou + "\n" + report.get("per_class"));
    }

    /** Well below the model card's 500-episode mIoU, to leave room for the noise of a 20-episode draw (the card lists what each stage scored on it); random weights score far lower. */
    static final double BUNDLED_MIOU_FLOOR = 0.50;

    @Test
    @SuppressWarnings("unchecked")
    void pascal5iLabelMapsWithTheIgnoreLabel() throws Exception {
        // label maps of synthetic scenes: kind k is VOC class k + 1 (fold 0 = classes 1..5), a 255 border as VOC draws one
        Path root = dir.resolve("voc"), img = Files.createDirectories(root.resolve("JPEGImages")), lab = Files.createDirectories(root.resolve("SegmentationClassAug"));
        for (int i = 0; i < 12; i++) {
            var scene = io.refldmseg.eval.SyntheticScenes.scene(9, i);
            java.awt.image.BufferedImage bi = new java.awt.image.BufferedImage(256, 256, java.awt.image.BufferedImage.TYPE_INT_RGB);
            byte[] labels = new byte[256 * 256];
            for (int y = 0; y < 256; y++)
                for (int x = 0; x < 256; x++) {
                    bi.setRGB(x, y, (scene.image().at(y, x, 0) << 16) | (scene.image().at(y, x, 1) << 8) | scene.image().at(y, x, 2));
                    int k = scene.kindMap()[y * 256 + x];
                    labels[y * 256 + x] = (byte) (x < 2 || y < 2 ? 255 : k + 1);
                }
            javax.imageio.ImageIO.write(bi, "jpg", img.resolve(i + ".jpg").toFile());
            ImageFiles.writeLabels(lab.resolve(i + ".png"), 256, 256, labels);
        }
        var episodes = io.refldmseg.eval.Episodes.labelMaps(img, lab, io.refldmseg.eval.Episodes.pascalFold(0), 5, 1, 0);
        assertEquals(5, episodes.size());
        var e = episodes.getFirst();
        byte[] truth = e.mask(e.truth()).labels();
        assertEquals((byte) 255, truth[0], "the border stays ignore");
        for (byte b : truth) assertTrue(b == 0 || b == 1 || b == (byte) 255);
        Path out = dir.resolve("voc_eval");
        assertEquals(0, run(models("evaluate", "--dataset", root.toString(), "--format", "pascal5i", "--fold", "0", "--episodes", "5", "--out", out.toString())));
        Map<String, Object> report = (Map<String, Object>) Json.parse(Files.readString(out.resolve("report.json")));
        assertEquals(java.util.Set.of("class 1", "class 2", "class 3", "class 4", "class 5"), ((Map<?, ?>) report.get("per_class")).keySet());
        assertEquals(java.util.List.of(21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77), io.refldmseg.eval.Episodes.cocoFold(0).subList(5, 20));
        assertEquals(java.util.List.of(2, 6, 10, 14, 18), io.refldmseg.eval.Episodes.cocoFold(1).subList(0, 5));
    }

    @Test
    @SuppressWarnings("unchecked")
    void davisLayoutGivesJAndF() throws Exception {
        Path samples = Fixtures.dir().resolve("../../samples").normalize();
        Path v = Files.createDirectories(dir.resolve("davis/JPEGImages/480p/cat")), a = Files.createDirectories(dir.resolve("davis/Annotations/480p/cat"));
        var q = ImageFiles.readRgb(samples.resolve("support.png"));
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(q.width(), q.height(), java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < q.height(); y++) for (int x = 0; x < q.width(); x++) img.setRGB(x, y, (q.at(y, x, 0) << 16) | (q.at(y, x, 1) << 8) | q.at(y, x, 2));
        for (String f : new String[]{"00000", "00001", "00002"}) {
            javax.imageio.ImageIO.write(img, "jpg", v.resolve(f + ".jpg").toFile());
            Files.copy(samples.resolve("support_mask.png"), a.resolve(f + ".png"));
        }
        Path out = dir.resolve("davis_eval");
        assertEquals(0, run(models("evaluate", "--dataset", dir.resolve("davis").toString(), "--format", "davis", "--out", out.toString())));
        Map<String, Object> report = (Map<String, Object>) Json.parse(Files.readString(out.resolve("report.json")));
        assertTrue(report.keySet().containsAll(java.util.List.of("j", "f", "jf")), report.toString());
        assertEquals(2, ((Number) report.get("episodes")).intValue(), "frames after the first");
        StringWriter err = new StringWriter();
        assertEquals(2, Main.run(new PrintWriter(err, true), models("evaluate", "--dataset", dir.toString(), "--format", "davis", "--out", out.toString())));
        assertTrue(err.toString().contains("not a DAVIS folder"), err.toString());
    }
}
