package io.refldmseg.cli;

import io.refldmseg.loader.SafeTensors;
import io.refldmseg.model.Attention;
import io.refldmseg.model.AttentionLayers;
import io.refldmseg.model.AttentionProcessor;
import io.refldmseg.model.MaskedAttention;
import io.refldmseg.pipeline.AttentionMaps;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.RgbImage;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/** segment's options for attention research: dump the cross-attention maps, picture them, change how the support mask enters. */
final class ResearchOptions {
    @Option(names = "--save-attention", paramLabel = "FILE.safetensors",
            description = "post-softmax probabilities of the chosen UNet layers, fp32 [B, heads, Lq, Lk] named by layer (-n: LAYER@step{i}, B = 3 in the order text, image, unconditioned)")
    Path saveAttention;

    @Option(names = "--save-attention-layers", paramLabel = "GLOB", defaultValue = "*attn2",
            description = "UNet layers --save-attention dumps (default: ${DEFAULT-VALUE}, every cross-attention)")
    String saveLayers;

    @Option(names = "--attention-maps", paramLabel = "DIR",
            description = "heat-map PNGs: per cross-attention layer and averaged, the attention mass each query pixel puts on the support's foreground tokens; plus a contact sheet")
    Path mapsDir;

    @Option(names = "--mask-mode", paramLabel = "hard|soft|none", defaultValue = "hard",
            description = "support key mask on the chosen layers: hard (the paper's (1-m)*-10000), soft (log(max(m,1e-4)), m = the object's area fraction on each token), none (no mask)")
    String maskMode;

    @Option(names = "--mask-layers", paramLabel = "GLOB", defaultValue = "*attn2",
            description = "UNet layers --mask-mode applies to (default: ${DEFAULT-VALUE}, every cross-attention)")
    String maskLayers;

    private final Map<String, float[]> saved = new LinkedHashMap<>();
    private final Map<String, long[]> savedShapes = new LinkedHashMap<>();
    private AttentionMaps maps;

    boolean active() {
        return saveAttention != null || mapsDir != null || !maskMode.equalsIgnoreCase("hard");
    }

    MaskedAttention.Mode mode() {
        return switch (maskMode.toLowerCase()) {
            case "hard" -> MaskedAttention.Mode.HARD;
            case "soft" -> MaskedAttention.Mode.SOFT;
            case "none" -> MaskedAttention.Mode.NONE;
            default -> throw new Main.UserError("--mask-mode must be hard, soft or none, got '" + maskMode + "'");
        };
    }

    /** Checks the option values and the output paths before any model loads. */
    void check() {
        mode();
        OutputPaths.checkFile("--save-attention", saveAttention);
        if (mapsDir != null) OutputPaths.checkDir("--attention-maps", mapsDir);
    }

    /** Sets the processors on the UNet's layers of {@code seg}. */
    void install(RefLdmSeg seg) {
        if (!active()) return;
        List<Attention> unet = seg.attentionLayers().stream().filter(a -> a.network() == io.refldmseg.model.AttentionContext.Network.UNET).toList();
        Predicate<String> masked = names(unet, "--mask-layers", maskLayers), dumped = saveAttention == null ? n -> false : names(unet, "--save-attention-layers", saveLayers);
        boolean n = seg.architecture() == RefLdmSeg.Architecture.N;
        if (mapsDir != null) maps = new AttentionMaps();
        MaskedAttention.Mode mode = mode();
        for (Attention a : unet) {
            boolean dump = dumped.test(a.name()), map = maps != null && a.isCrossAttention();
            MaskedAttention.Mode m = masked.test(a.name()) ? mode : MaskedAttention.Mode.HARD;
            if (!dump && !map && m == MaskedAttention.Mode.HARD) {
                a.setProcessor(AttentionProcessor.FUSED);
                continue;
            }
            MaskedAttention.Recorder rec = !dump && !map ? null : (call, p) -> {
                if (dump) {
                    String name = n ? call.layer().name() + "@step" + call.context().step() : call.layer().name();
                    saved.put(name, call.backend().toHost(p));
                    savedShapes.put(name, new long[]{p.dim(0), p.dim(1), p.dim(2), p.dim(3)});
                }
                if (map) maps.record(call, p);
            };
            a.setProcessor(new MaskedAttention(m, rec));
        }
    }

    private static Predicate<String> names(List<Attention> layers, String option, String glob) {
        try {
            List<String> chosen = AttentionLayers.select(layers, glob).stream().map(Attention::name).toList();
            return chosen::contains;
        } catch (IllegalArgumentException e) {
            throw new Main.UserError(option + ": " + e.getMessage());
        }
    }

    /** Writes what was recorded. */
    void write(RgbImage query) throws IOException {
        if (saveAttention != null) {
            Map<String, SafeTensors.WriteEntry> entries = new LinkedHashMap<>();
            saved.forEach((name, data) -> entries.put(name, SafeTensors.WriteEntry.f32(data, savedShapes.get(name))));
            SafeTensors.write(saveAttention, entries, Map.of("producer", "refldmseg-java", "content",
                    "post-softmax cross-attention probabilities [B, heads, Lq, Lk]; Lq row-major over the latent, Lk in token order (shot 1 first)"));
            Progress.line("saved " + entries.size() + " attention tensors to " + saveAttention);
        }
        if (maps != null) {
            int n = maps.write(mapsDir, query, RefLdmSeg.SIZE);
            Progress.line("wrote " + n + " attention pictures to " + mapsDir);
        }
    }
}
