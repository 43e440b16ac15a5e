package io.refldmseg.cli;

import io.refldmseg.eval.Episodes;
import io.refldmseg.pipeline.Augmentation;
import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Request;
import io.refldmseg.pipeline.Result;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Segmenter;
import io.refldmseg.pipeline.Support;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.stream.Stream;

@Command(name = "batch", mixinStandardHelpOptions = true,
        description = "Segment many queries: a folder of images with one set of supports, or a JSONL manifest of "
                + "{\"query\": PATH, \"supports\": [PATH...], \"support_masks\": [PATH...]} (paths relative to the manifest). "
                + "Writes <stem>_mask.png (and _overlay.png) per query; outputs that exist are skipped, so a stopped run resumes; "
                + "a failed item is reported and skipped. Exit 0 when every item is done, 3 when some failed.")
final class BatchCommand implements Callable<Integer> {
    @Mixin
    ModelOptions models;

    @Mixin
    SegmentOptions request;

    @Option(names = "--manifest", paramLabel = "FILE.jsonl", description = "one episode per line")
    Path manifest;

    @Option(names = "--queries", paramLabel = "DIR", description = "folder of query images (PNG/JPEG/BMP), all segmented with --support/--support-mask")
    Path queries;

    @Option(names = "--support", paramLabel = "IMAGE", description = "with --queries: a support image (repeat for k shots)")
    List<Path> supports = new ArrayList<>();

    @Option(names = "--support-mask", paramLabel = "MASK", description = "with --queries: the mask of the matching --support")
    List<Path> supportMasks = new ArrayList<>();

    @Option(names = "--out-dir", required = true, paramLabel = "DIR", description = "where the masks go")
    Path outDir;

    @Option(names = "--overlays", description = "also write <stem>_overlay.png")
    boolean overlays;

    @Mixin
    WorkerOptions workers;

    @Mixin
    AugmentationOption augmentation;

    /** One item: where its images are and what it writes. */
    record Item(String stem, Path query, List<Path> supports, List<Path> masks) {
    }

    private record Pending(Item item, RgbImage query, CompletableFuture<Result> result) {
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        if ((manifest == null) == (queries == null)) throw new Main.UserError("give exactly one of --manifest FILE.jsonl or --queries DIR");
        Options options = request.toOptions(false);
        int copies = augmentation.checked(options.noise() != null);
        int views = augmentation.checkedViews();
        OutputPaths.checkDir("--out-dir", outDir);
        List<Item> items = manifest != null ? readManifest(manifest) : readFolder();
        List<Item> todo = items.stream().filter(i -> !Files.exists(maskPath(i))).toList();
        Progress.line(items.size() + " items, " + (items.size() - todo.size()) + " already done, " + todo.size() + " to do");
        if (todo.isEmpty()) return 0;
        Files.createDirectories(outDir);
        int failed = 0, done = 0;
        Progress.Bar bar = new Progress.Bar("images", todo.size());
        List<RefLdmSeg> engines = models.open(workers.workers);
        try (Segmenter segmenter = new Segmenter(engines, Segmenter.Config.defaults())) {
            Deque<Pending> inFlight = new ArrayDeque<>();
            int next = 0;
            while (next < todo.size() || !inFlight.isEmpty()) {
                while (next < todo.size() && inFlight.size() < 4 * workers.workers) { // a few decoded requests ahead of the engines, not all of them
                    Item it = todo.get(next++);
                    try {
                        Request r = Augmentation.withSupportViews(load(it, options), views, engines.getFirst().tokenGrid());
                        inFlight.add(new Pending(it, r.query(), Augmentation.submit(segmenter, r, copies).thenApply(Segmenter.Done::result)));
                    } catch (RuntimeException e) {
                        failed++;
                        done++;
                        report(it, e);
                        bar.update(done, failed);
                    }
                }
                if (inFlight.isEmpty()) continue;
                var head = inFlight.poll();
                try {
                    Result d = head.result().get();
                    ImageFiles.writeMask(maskPath(head.item()), d.width(), d.height(), d.mask());
                    if (overlays) ImageFiles.writeOverlay(outDir.resolve(head.item().stem() + "_overlay.png"), head.query(), d.mask());
                } catch (ExecutionException e) {
                    failed++;
                    report(head.item(), e.getCause());
                }
                done++;
                bar.update(done, failed);
            }
        } finally {
            engines.forEach(RefLdmSeg::close);
        }
        Progress.line((todo.size() - failed) + " done, " + failed + " failed; masks in " + outDir);
        return failed == 0 ? 0 : 3;
    }

    private Path maskPath(Item it) {
        return outDir.resolve(it.stem() + "_mask.png");
    }

    private static void report(Item it, Throwable e) {
        Progress.line("skipped " + it.query() + ": " + e.getMessage());
    }

    private static Request load(Item it, Options options) {
        List<Support> shots = SegmentCommand.readSupports(it.supports(), it.masks());
        return new Request(ImageFiles.readRgb(it.query()), shots, options);
    }

    private List<Item> readFolder() throws IOException {
        if (!Files.isDirectory(queries)) throw new Main.UserError("--queries " + queries + ": not a folder");
        if (supports.isEmpty() || supports.size() != supportMasks.size())
            throw new Main.UserError("--queries needs --support and --support-mask, one mask per support");
        try (Stream<Path> s = Files.list(queries)) {
            return s.filter(p -> p.getFileName().toString().toLowerCase().matches(".*\\.(png|jpe?g|bmp)$")).sorted()
                    .map(p -> new Item(Episodes.stem(p), p, supports, supportMasks)).toList();
        }
    }

    /** The manifest's episodes as items; two queries with one file name keep apart (name_2, ...). */
    static List<Item> readManifest(Path file) {
        if (!Files.isRegularFile(file)) throw new Main.UserError("--manifest " + file + ": no such file");
        List<Item> out = new ArrayList<>();
        java.util.Set<String> stems = new java.util.HashSet<>();
        for (Episodes.Episode e : Episodes.manifest(file, false)) {
            String stem = Episodes.stem(e.query());
            for (int k = 2; !stems.add(stem); k++) stem = Episodes.stem(e.query()) + "_" + k;
            out.add(new Item(stem, e.query(), e.supports(), e.supportMasks()));
        }
        return out;
    }
}
