package io.refldmseg.cli;

import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Result;
import io.refldmseg.pipeline.RgbImage;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "video", mixinStandardHelpOptions = true,
        description = "Segment a video: the first frame and its mask are the prompt for every later frame.")
final class VideoCommand implements Callable<Integer> {
    @Mixin
    ModelOptions models;

    @Mixin
    SegmentOptions request;

    @Option(names = "--frames", required = true, paramLabel = "DIR", description = "folder of frames (PNG/JPEG), in file-name order")
    Path frames;

    @Option(names = "--first-mask", required = true, paramLabel = "MASK", description = "mask of the first frame")
    Path firstMask;

    @Option(names = "--support-views", defaultValue = "1", paramLabel = "N", description = "pass the first frame as N views of it, as segment's"
            + " --support-views does: 1 (off, default), 2, 4, 8, 16 or 32")
    int views;

    @Option(names = "--out-dir", defaultValue = "video_out", paramLabel = "DIR", description = "where masks and overlays go (default: ${DEFAULT-VALUE})")
    Path outDir;

    @Override
    public Integer call() throws IOException {
        if (!Files.isDirectory(frames)) throw new Main.UserError(frames + ": not a folder of frames");
        var options = request.toOptions(false);
        OutputPaths.checkDir("--out-dir", outDir);
        AugmentationOption.checkedViews(views);
        List<Path> files;
        try (Stream<Path> s = Files.list(frames)) {
            files = s.filter(p -> p.getFileName().toString().toLowerCase().matches(".*\\.(png|jpe?g|bmp)$")).sorted().toList();
        }
        if (files.size() < 2) throw new Main.UserError(frames + ": needs at least two frames, found " + files.size());
        List<RgbImage> images = new ArrayList<>();
        for (Path f : files) images.add(ImageFiles.readRgb(f));
        try (RefLdmSeg seg = models.open()) {
            List<Result> results = seg.segmentVideo(images, ImageFiles.readLabels(firstMask), options, views);
            for (int i = 0; i < results.size(); i++) {
                String stem = io.refldmseg.eval.Episodes.stem(files.get(i + 1));
                Result r = results.get(i);
                ImageFiles.writeMask(outDir.resolve(stem + "_mask.png"), r.width(), r.height(), r.mask());
                ImageFiles.writeOverlay(outDir.resolve(stem + "_overlay.png"), images.get(i + 1), r.mask());
            }
            System.out.println(outDir + ": " + results.size() + " frames segmented");
            return 0;
        }
    }
}
