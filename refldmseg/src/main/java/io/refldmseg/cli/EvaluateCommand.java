package io.refldmseg.cli;

import io.refldmseg.eval.Episodes;
import io.refldmseg.eval.Evaluation;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Segmenter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = "Score a model on a dataset: per-class IoU, mIoU, FB-IoU (and J, F, J&F for DAVIS); report.json, report.csv, pred/<i>.png, contact_sheet.png.")
final class EvaluateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions models;

    @Mixin
    SegmentOptions request;

    @Option(names = "--dataset", paramLabel = "DIR", description = "dataset folder (see --format)")
    Path dataset;

    @Option(names = "--format", defaultValue = "fss", paramLabel = "fss|davis|pascal5i|coco20i",
            description = "fss: DIR/<class>/<n>.jpg + <n>.png (FSS-1000); davis: DAVIS-2017 480p; pascal5i: DIR/JPEGImages + DIR/SegmentationClassAug; "
                    + "coco20i: DIR/images + DIR/labels (label-map PNGs, COCO class 1..80) (default: ${DEFAULT-VALUE})")
    String format;

    @Option(names = "--fold", defaultValue = "0", description = "pascal5i / coco20i: the fold whose classes are evaluated, 0..3 (default: ${DEFAULT-VALUE})")
    int fold;

    @Option(names = "--manifest", paramLabel = "FILE.jsonl", description = "episodes instead of a dataset: {query, supports, support_masks, truth, class} per line")
    Path manifest;

    @Option(names = "--episodes", defaultValue = "1000", description = "fss: episodes to draw (default: ${DEFAULT-VALUE})")
    int count;

    @Option(names = "--shots", defaultValue = "1", description = "fss: supports per episode (default: ${DEFAULT-VALUE})")
    int shots;

    @Option(names = "--episode-seed", defaultValue = "0", description = "fss: seed of the episode draw (default: ${DEFAULT-VALUE})")
    long episodeSeed;

    @Option(names = "--truth-ignore-label", defaultValue = "-1", paramLabel = "N", description = "ground-truth label that counts for nothing (255 for mmseg label maps)")
    int truthIgnore;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "where the report goes")
    Path out;

    @Mixin
    WorkerOptions workers;

    @Mixin
    AugmentationOption augmentation;

    @Override
    public Integer call() throws Exception {
        if ((dataset == null) == (manifest == null)) throw new Main.UserError("give exactly one of --dataset DIR or --manifest FILE.jsonl");
        if (count < 1) throw new Main.UserError("--episodes must be positive, got " + count);
        if (shots < 1) throw new Main.UserError("--shots must be positive, got " + shots);
        if (truthIgnore < -1 || truthIgnore > 255) throw new Main.UserError("--truth-ignore-label must be -1..255, got " + truthIgnore);
        Options options = request.toOptions(false);
        int copies = augmentation.checked(options.noise() != null);
        int views = augmentation.checkedViews();
        OutputPaths.checkDir("--out", out);
        if (truthIgnore < 0 && (format.equalsIgnoreCase("pascal5i") || format.equalsIgnoreCase("coco20i"))) truthIgnore = 255;
        List<Episodes.Episode> episodes = manifest != null ? Episodes.manifest(manifest) : switch (format.toLowerCase()) {
            case "fss" -> Episodes.fss(dataset, count, shots, episodeSeed);
            case "davis" -> Episodes.davis(dataset);
            case "pascal5i" -> Episodes.labelMaps(dataset.resolve("JPEGImages"), dataset.resolve("SegmentationClassAug"), Episodes.pascalFold(fold),
                    count, shots, episodeSeed);
            case "coco20i" -> Episodes.labelMaps(dataset.resolve("images"), dataset.resolve("labels"), Episodes.cocoFold(fold), count, shots, episodeSeed);
            default -> throw new Main.UserError("--format must be fss, davis, pascal5i or coco20i, got '" + format + "'");
        };
        Progress.line(episodes.size() + " episodes" + (copies > 1 ? ", " + copies + " copies each (--tta)" : "")
                + (views > 1 ? ", " + views + " views of each support (--support-views)" : ""));
        Progress.Bar bar = new Progress.Bar("episodes", episodes.size());
        Evaluation.Report report;
        List<RefLdmSeg> engines = models.open(workers.workers);
        try (Segmenter segmenter = new Segmenter(engines, Segmenter.Config.defaults())) {
            report = Evaluation.run(segmenter, episodes, options, copies, views, truthIgnore, out, done -> bar.update(done, 0));
        } finally {
            engines.forEach(RefLdmSeg::close);
        }
        for (Map.Entry<String, Double> e : report.metrics().perClassIoU().entrySet()) System.out.printf("  %-20s IoU %.4f%n", e.getKey(), e.getValue());
        System.out.printf("mIoU %.4f  FB-IoU %.4f  over %d episodes%s; %s%n", report.metrics().mIoU(), report.metrics().fbIoU(), report.metrics().episodes(),
                episodes.getFirst().video() ? String.format("  J %.4f  F %.4f  J&F %.4f", report.metrics().j(), report.metrics().f(),
                        (report.metrics().j() + report.metrics().f()) / 2) : "", out.resolve("report.json"));
        return 0;
    }
}
