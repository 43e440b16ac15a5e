package io.refldmseg.cli;

import io.refldmseg.loader.SafeTensors;
import io.refldmseg.pipeline.Augmentation;
import io.refldmseg.pipeline.HostTensor;
import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.LabelMap;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.PipelineListener;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Request;
import io.refldmseg.pipeline.Result;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Support;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "segment", mixinStandardHelpOptions = true,
        description = "Segment the query image: the object marked by the support masks (or, with --categories, one class per support).")
final class SegmentCommand implements Callable<Integer> {
    @Mixin
    ModelOptions models;

    @Mixin
    SegmentOptions request;

    @Mixin
    ResearchOptions research;

    @Mixin
    AugmentationOption augmentation;

    @Option(names = "--query", required = true, paramLabel = "IMAGE", description = "image to segment")
    Path query;

    @Option(names = "--support", paramLabel = "IMAGE", description = "support image (repeat for k shots)")
    List<Path> supports = new ArrayList<>();

    @Option(names = "--support-mask", paramLabel = "MASK", description = "mask of the matching --support (0 = background, non-zero = object)")
    List<Path> supportMasks = new ArrayList<>();

    @Option(names = "--categories", description = "each support is its own category: write a label map (0 = background, i = support i)")
    boolean categories;

    @Option(names = "--out", defaultValue = "mask.png", paramLabel = "PNG", description = "mask (or label map) to write (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--overlay", paramLabel = "PNG", description = "query with the mask tinted on top")
    Path overlay;

    @Option(names = "--save-tensors", paramLabel = "FILE", description = "safetensors with logits, mask, prompt_embeds, latents and the UNet output")
    Path saveTensors;

    @Override
    public Integer call() throws IOException {
        if (supports.isEmpty()) throw new Main.UserError("at least one --support image with its --support-mask is needed");
        if (supports.size() != supportMasks.size())
            throw new Main.UserError(supports.size() + " --support images but " + supportMasks.size() + " --support-mask files: give one mask per support");
        Options options = request.toOptions(false);
        List<String> notWithCopies = new ArrayList<>();
        if (categories) notWithCopies.add("--categories");
        if (saveTensors != null) notWithCopies.add("--save-tensors");
        if (research.saveAttention != null) notWithCopies.add("--save-attention");
        if (research.mapsDir != null) notWithCopies.add("--attention-maps");
        int copies = augmentation.checked(options.noise() != null, notWithCopies.toArray(String[]::new));
        int views = augmentation.checkedViews();
        OutputPaths.checkFile("--out", out);
        OutputPaths.checkFile("--overlay", overlay);
        OutputPaths.checkFile("--save-tensors", saveTensors);
        research.check();
        RgbImage q = ImageFiles.readRgb(query);
        List<Support> given = readSupports(supports, supportMasks);
        try (RefLdmSeg seg = models.open().compactingBetweenStages()) { // one request: its stages' memory need not add up
            research.install(seg);
            if (categories) {
                List<List<Support>> perCategory = given.stream() // each category its own support's views
                        .map(s -> Augmentation.supportViews(List.of(s), views, seg.tokenGrid())).toList();
                RefLdmSeg.CategoryResult r = seg.segmentCategories(q, perCategory, options);
                ImageFiles.writeLabels(out, r.width(), r.height(), r.labels());
                if (overlay != null) {
                    byte[] any = new byte[r.labels().length];
                    for (int i = 0; i < any.length; i++) any[i] = (byte) (r.labels()[i] != 0 ? 1 : 0);
                    ImageFiles.writeOverlay(overlay, q, any);
                }
                long[] counts = new long[perCategory.size() + 1];
                for (byte b : r.labels()) counts[b]++;
                System.out.println(out + ": label map, pixels per label (0 = background): " + java.util.Arrays.toString(counts));
                return 0;
            }
            List<Support> shots = Augmentation.supportViews(given, views, seg.tokenGrid());
            PipelineListener.TensorCollector intermediates = new PipelineListener.TensorCollector();
            Result r = copies > 1 ? Augmentation.segment(seg, new Request(q, shots, options), copies)
                    : seg.segment(q, shots, options, saveTensors != null ? intermediates : PipelineListener.NONE);
            ImageFiles.writeMask(out, r.width(), r.height(), r.mask());
            if (overlay != null) ImageFiles.writeOverlay(overlay, q, r.mask());
            if (saveTensors != null) save(saveTensors, intermediates.tensors());
            research.write(q);
            System.out.printf("%s: %d of %d pixels foreground (-%s, %d shot%s%s%s; %s)%n", out, r.foregroundPixels(), (long) r.width() * r.height(),
                    seg.architecture().name().toLowerCase(), given.size(), given.size() == 1 ? "" : "s", views > 1 ? " x " + views + " views" : "",
                    copies > 1 ? ", " + copies + " copies averaged" : "", r.timings());
            if (overlay != null) System.out.println(overlay + ": overlay");
            return 0;
        }
    }

    static List<Support> readSupports(List<Path> images, List<Path> masks) {
        List<Support> out = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            RgbImage img = ImageFiles.readRgb(images.get(i));
            LabelMap m = ImageFiles.readLabels(masks.get(i));
            if (m.width() != img.width() || m.height() != img.height())
                throw new Main.UserError(masks.get(i) + " is " + m.width() + "x" + m.height() + " but its support image " + images.get(i)
                        + " is " + img.width() + "x" + img.height());
            out.add(new Support(img, m));
        }
        return out;
    }

    static void save(Path file, Map<String, HostTensor> tensors) throws IOException {
        Map<String, SafeTensors.WriteEntry> entries = new LinkedHashMap<>();
        tensors.forEach((name, t) -> {
            if (t.unsignedByte()) {
                byte[] b = new byte[t.data().length];
                for (int i = 0; i < b.length; i++) b[i] = (byte) t.data()[i];
                entries.put(name, SafeTensors.WriteEntry.u8(b, t.shape()));
            } else {
                entries.put(name, SafeTensors.WriteEntry.f32(t.data(), t.shape()));
            }
        });
        SafeTensors.write(file, entries, Map.of("producer", "refldmseg-java"));
        Progress.line("saved " + entries.size() + " tensors to " + file);
    }
}
