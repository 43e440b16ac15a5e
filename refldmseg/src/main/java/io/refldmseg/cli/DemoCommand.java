package io.refldmseg.cli;

import io.refldmseg.eval.Metrics;
import io.refldmseg.pipeline.BundledModel;
import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.LabelMap;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Segment the bundled synthetic sample with the bundled tiny model; write a mask and an overlay, and score the mask.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--out-dir", defaultValue = "out", paramLabel = "DIR", description = "where to write (default: ${DEFAULT-VALUE})")
    Path outDir;

    @Override
    public Integer call() {
        Path samples = BundledModel.folder().map(m -> m.getParent().getParent().resolve("samples/synth"))
                .orElseThrow(() -> new Main.UserError("the bundled model (" + BundledModel.FOLDER
                        + ") was not found (run from the repository, or set -Drefldmseg.home)"));
        if (!Files.isDirectory(samples)) throw new Main.UserError("the bundled sample folder " + samples + " is missing");
        Path mask = outDir.resolve("demo_mask.png");
        Progress.line("demo: segment the triangles of samples/synth/query.png, marked in samples/synth/support.png by its mask");
        int rc = Main.run("segment",
                "--query", samples.resolve("query.png").toString(),
                "--support", samples.resolve("support.png").toString(),
                "--support-mask", samples.resolve("support_mask.png").toString(),
                "--out", mask.toString(),
                "--overlay", outDir.resolve("demo_overlay.png").toString());
        if (rc != 0) return rc;
        LabelMap pred = ImageFiles.readLabels(mask), truth = ImageFiles.readLabels(samples.resolve("query_truth.png"));
        double iou = Metrics.overlap(pred.labels(), truth.labels(), -1).iou();
        Progress.line(String.format("demo: IoU against the scene's ground truth (samples/synth/query_truth.png): %.3f", iou));
        return 0;
    }
}
