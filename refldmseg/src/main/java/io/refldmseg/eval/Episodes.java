package io.refldmseg.eval;

import io.refldmseg.loader.Json;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Evaluation episodes from the dataset layouts people have. An episode is a query with its
 * ground truth and k supports with their masks, all of one class; {@code video} marks DAVIS
 * frames (J and F are computed for them).
 */
public final class Episodes {
    /**
     * @param labelClass for label-map datasets (PASCAL-5i, COCO-20i) the class whose pixels are the
     *                   object in {@code truth} and the support maps (255 stays "ignore"); -1 when the
     *                   files already are masks (0 background, anything else object)
     */
    public record Episode(String cls, Path query, Path truth, List<Path> supports, List<Path> supportMasks, boolean video, int labelClass) {
        public Episode(String cls, Path query, Path truth, List<Path> supports, List<Path> supportMasks, boolean video) {
            this(cls, query, truth, supports, supportMasks, video, -1);
        }

        /** A truth or support file as a mask: as stored, or for label maps 1 where the label is this episode's class. */
        public io.refldmseg.pipeline.LabelMap mask(Path file) {
            io.refldmseg.pipeline.LabelMap m = io.refldmseg.pipeline.ImageFiles.readLabels(file);
            if (labelClass < 0) return m;
            byte[] out = new byte[m.labels().length];
            for (int i = 0; i < out.length; i++) {
                int v = m.labels()[i] & 0xff;
                out[i] = (byte) (v == labelClass ? 1 : v == 255 ? 255 : 0);
            }
            return new io.refldmseg.pipeline.LabelMap(m.width(), m.height(), out);
        }
    }

    /** PASCAL-5i fold f: classes 5f+1 .. 5f+5 of PASCAL VOC's 20. */
    public static List<Integer> pascalFold(int fold) {
        if (fold < 0 || fold > 3) throw new IllegalArgumentException("PASCAL-5i fold must be 0..3, got " + fold);
        return java.util.stream.IntStream.rangeClosed(5 * fold + 1, 5 * fold + 5).boxed().toList();
    }

    /** COCO-20i fold f (the interleaved split of HSNet and most later work): classes 4k + f + 1, k = 0..19, of COCO's 80. */
    public static List<Integer> cocoFold(int fold) {
        if (fold < 0 || fold > 3) throw new IllegalArgumentException("COCO-20i fold must be 0..3, got " + fold);
        return java.util.stream.IntStream.range(0, 20).map(k -> 4 * k + fold + 1).boxed().toList();
    }

    /**
     * Label-map datasets (PASCAL-5i: {@code JPEGImages/*.jpg} + {@code SegmentationClassAug/*.png};
     * COCO-20i as label-map PNGs): an image belongs to class c when its label map has c; episodes
     * take the fold's classes in turn, a random query and {@code shots} other images of the class,
     * from {@code seed}. Label 255 is "ignore" in the truth (and background in the supports).
     */
    public static List<Episode> labelMaps(Path images, Path labels, List<Integer> classes, int count, int shots, long seed) {
        List<Path> maps = list(labels, p -> p.getFileName().toString().toLowerCase().endsWith(".png"));
        java.util.Map<Integer, List<Path[]>> byClass = new java.util.LinkedHashMap<>();
        for (int c : classes) byClass.put(c, new ArrayList<>());
        for (Path m : maps) {
            Path img = images.resolve(stem(m) + ".jpg");
            if (!Files.isRegularFile(img)) continue;
            byte[] l = io.refldmseg.pipeline.ImageFiles.readLabels(m).labels();
            boolean[] seen = new boolean[256];
            for (byte b : l) seen[b & 0xff] = true;
            for (int c : classes) if (seen[c]) byClass.get(c).add(new Path[]{img, m});
        }
        List<Integer> usable = classes.stream().filter(c -> byClass.get(c).size() >= shots + 1).toList();
        if (usable.isEmpty())
            throw new IllegalArgumentException(labels + ": no class of " + classes + " has " + (shots + 1) + " images with their label maps in " + images);
        return draw(usable.stream().map(c -> "class " + c).toList(), usable.stream().map(byClass::get).toList(), usable, count, shots, seed);
    }

    private Episodes() {
    }

    /**
     * FSS-1000 layout: {@code DIR/<class>/<n>.jpg} with {@code <n>.png} masks. {@code count}
     * episodes, classes taken in turn (sorted by name), each with a random query and {@code shots}
     * other images of its class as supports, from {@code seed}: the same arguments give the same episodes.
     */
    public static List<Episode> fss(Path dir, int count, int shots, long seed) {
        List<Path> classes = list(dir, Files::isDirectory);
        if (classes.isEmpty()) throw new IllegalArgumentException(dir + ": no class folders (FSS-1000 layout: DIR/<class>/<n>.jpg + <n>.png)");
        List<List<Path[]>> perClass = new ArrayList<>();
        for (Path c : classes) {
            List<Path[]> pairs = new ArrayList<>();
            for (Path img : list(c, p -> p.getFileName().toString().toLowerCase().matches(".*\\.(jpe?g)$"))) {
                Path mask = img.resolveSibling(stem(img) + ".png");
                if (Files.isRegularFile(mask)) pairs.add(new Path[]{img, mask});
            }
            if (pairs.size() < shots + 1)
                throw new IllegalArgumentException(c + ": " + pairs.size() + " image/mask pairs, a " + shots + "-shot episode needs " + (shots + 1));
            perClass.add(pairs);
        }
        return draw(classes.stream().map(c -> c.getFileName().toString()).toList(), perClass, null, count, shots, seed);
    }

    /**
     * {@code count} episodes over classes taken in turn: each shuffles its class's (image, mask)
     * pairs with one seeded generator, the first pair is the query, the next {@code shots} the supports.
     * {@code labelClasses} (or null) gives each class's label value in label-map datasets.
     */
    private static List<Episode> draw(List<String> names, List<List<Path[]>> perClass, List<Integer> labelClasses, int count, int shots, long seed) {
        Random r = new Random(seed);
        List<Episode> out = new ArrayList<>();
        for (int e = 0; e < count; e++) {
            int ci = e % names.size();
            List<Path[]> pairs = new ArrayList<>(perClass.get(ci));
            Collections.shuffle(pairs, r);
            List<Path> s = new ArrayList<>(), m = new ArrayList<>();
            for (int k = 1; k <= shots; k++) {
                s.add(pairs.get(k)[0]);
                m.add(pairs.get(k)[1]);
            }
            out.add(new Episode(names.get(ci), pairs.getFirst()[0], pairs.getFirst()[1], s, m, false,
                    labelClasses == null ? -1 : labelClasses.get(ci)));
        }
        return out;
    }

    /**
     * DAVIS-2017 layout: {@code JPEGImages/480p/<video>/} and {@code Annotations/480p/<video>/}. Every
     * video's first frame and its annotation are the support; each later annotated frame is a query.
     * Annotations are palette label maps; every object label counts as the object (single-object J&F).
     */
    public static List<Episode> davis(Path dir) {
        Path frames = dir.resolve("JPEGImages/480p"), annotations = dir.resolve("Annotations/480p");
        if (!Files.isDirectory(frames) || !Files.isDirectory(annotations))
            throw new IllegalArgumentException(dir + ": not a DAVIS folder (JPEGImages/480p and Annotations/480p)");
        List<Episode> out = new ArrayList<>();
        for (Path video : list(frames, Files::isDirectory)) {
            String name = video.getFileName().toString();
            List<Path> jpgs = list(video, p -> p.getFileName().toString().toLowerCase().endsWith(".jpg"));
            if (jpgs.size() < 2) continue;
            Path firstMask = annotations.resolve(name).resolve(stem(jpgs.getFirst()) + ".png");
            if (!Files.isRegularFile(firstMask)) throw new IllegalArgumentException(firstMask + ": the first frame's annotation is missing");
            for (Path f : jpgs.subList(1, jpgs.size())) {
                Path truth = annotations.resolve(name).resolve(stem(f) + ".png");
                if (Files.isRegularFile(truth)) out.add(new Episode(name, f, truth, List.of(jpgs.getFirst()), List.of(firstMask), true));
            }
        }
        if (out.isEmpty()) throw new IllegalArgumentException(dir + ": no annotated frames after the first in any video");
        return out;
    }

    /** A JSONL manifest: {"query", "supports", "support_masks", "truth", "class"} per line, paths relative to the file. */
    public static List<Episode> manifest(Path file) {
        return manifest(file, true);
    }

    /** The same, with "truth" optional unless {@code needTruth} (a batch job has none; its episodes' truth is then null). */
    public static List<Episode> manifest(Path file, boolean needTruth) {
        Path base = file.toAbsolutePath().getParent();
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage());
        }
        List<Episode> out = new ArrayList<>();
        for (int n = 0; n < lines.size(); n++) {
            String line = lines.get(n).strip();
            if (line.isEmpty()) continue;
            String where = file + " line " + (n + 1);
            Object o;
            try {
                o = Json.parse(line);
            } catch (IOException e) {
                throw new IllegalArgumentException(where + ": not valid JSON: " + e.getMessage());
            }
            if (!(o instanceof Map<?, ?> m)) throw new IllegalArgumentException(where + ": not a JSON object");
            String q = string(m, "query", where), t = needTruth || m.containsKey("truth") ? string(m, "truth", where) : null;
            String cls = m.get("class") instanceof String c ? c : "all";
            List<Path> s = paths(m, "supports", base, where), masks = paths(m, "support_masks", base, where);
            if (s.isEmpty() || s.size() != masks.size())
                throw new IllegalArgumentException(where + ": 'supports' and 'support_masks' must be non-empty lists of the same length");
            out.add(new Episode(cls, base.resolve(q), t == null ? null : base.resolve(t), s, masks, false));
        }
        return out;
    }

    private static String string(Map<?, ?> m, String key, String where) {
        if (m.get(key) instanceof String s) return s;
        throw new IllegalArgumentException(where + ": field '" + key + "' missing or not a string");
    }

    private static List<Path> paths(Map<?, ?> m, String key, Path base, String where) {
        if (!(m.get(key) instanceof List<?> l)) throw new IllegalArgumentException(where + ": field '" + key + "' missing or not a list");
        List<Path> out = new ArrayList<>();
        for (Object o : l) {
            if (!(o instanceof String s)) throw new IllegalArgumentException(where + ": field '" + key + "' holds a non-string");
            out.add(base.resolve(s));
        }
        return out;
    }

    /** A file's name without its extension. */
    public static String stem(Path p) {
        return p.getFileName().toString().replaceFirst("\\.[^.]+$", "");
    }

    private static List<Path> list(Path dir, java.util.function.Predicate<Path> keep) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": not a folder");
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(keep).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
