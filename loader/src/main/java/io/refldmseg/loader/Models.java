package io.refldmseg.loader;

import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Entry point of the loader: opens a UNet, VAE or vision tower from whatever the user has (a
 * single file in any supported layout, a diffusers model folder, or a diffusers pipeline folder),
 * maps its keys to internal names and works out its architecture: from diffusers' config.json or
 * the safetensors metadata when present, otherwise from the weight shapes, with SD1.5 / ViT-L/14
 * defaults only for what shapes cannot tell (head counts, GroupNorm groups).
 */
public final class Models {
    private Models() {
    }

    public record Loaded<C>(C config, ModelWeights weights, String configSource) implements AutoCloseable {
        @Override
        public void close() {
            weights.close();
        }
    }

    public static Loaded<UNetConfig> unet(Path path) {
        Source src = resolve(path, "unet");
        ModelWeights w = map(src, KeyLayouts::unet, "UNet");
        try {
            Optional<Map<String, Object>> json = src.config().or(() -> metadataConfig(src, "unet_config"));
            UNetConfig inferred = Configs.inferUNet(w);
            return new Loaded<>(json.map(j -> Configs.unetFromJson(j, w.source())).orElse(inferred), w,
                    json.isPresent() ? "from config.json or file metadata" : "inferred from weight shapes");
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    public static Loaded<VaeConfig> vae(Path path) {
        Source src = resolve(path, "vae");
        ModelWeights w = map(src, KeyLayouts::vae, "VAE");
        try {
            Optional<Map<String, Object>> json = src.config().or(() -> metadataConfig(src, "vae_config"));
            VaeConfig inferred = Configs.inferVae(w);
            return new Loaded<>(json.map(j -> Configs.vaeFromJson(j, w.source())).orElse(inferred), w,
                    json.isPresent() ? "from config.json or file metadata" : "inferred from weight shapes");
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    public static Loaded<ClipConfig> clip(Path path) {
        Source src = resolve(path, "image_encoder");
        ModelWeights w = map(src, KeyLayouts::clip, "vision tower");
        try {
            Optional<Map<String, Object>> json = src.config();
            ClipConfig inferred = Configs.inferClip(w);
            return new Loaded<>(json.map(j -> Configs.clipFromJson(j, inferred)).orElse(inferred), w,
                    json.isPresent() ? "from config.json or file metadata" : "inferred from weight shapes");
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    /** Weights plus the config found beside or inside them. */
    private record Source(String description, List<TensorFile> files, Optional<Map<String, Object>> config) {
    }

    private static final List<String> WEIGHT_NAMES = List.of("diffusion_pytorch_model.safetensors", "model.safetensors",
            "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin", "pytorch_model.bin");

    private static Source resolve(Path path, String subfolder) {
        if (!Files.exists(path)) throw new CheckpointException(path + ": no such file or folder");
        if (Files.isDirectory(path)) {
            Path dir = Files.isDirectory(path.resolve(subfolder)) ? path.resolve(subfolder) : path;
            for (String name : WEIGHT_NAMES) {
                Path f = dir.resolve(name);
                if (Files.isRegularFile(f)) {
                    Path cfg = dir.resolve("config.json");
                    Optional<Map<String, Object>> config = Files.isRegularFile(cfg) ? Optional.of(readJson(cfg)) : Optional.empty();
                    return new Source(f.toString(), List.of(TensorFile.open(f)), config);
                }
            }
            throw new CheckpointException(path + ": folder holds none of " + WEIGHT_NAMES + " (looked in " + dir + ")");
        }
        TensorFile tf = TensorFile.open(path);
        Optional<Map<String, Object>> config = Optional.ofNullable(tf.metadata().get("config")).map(s -> parseJson(path, s, "__metadata__.config"));
        return new Source(path.toString(), List.of(tf), config);
    }

    private static Optional<Map<String, Object>> metadataConfig(Source src, String key) {
        return src.files().stream().map(f -> f.metadata().get(key)).filter(s -> s != null).findFirst()
                .map(s -> parseJson(Path.of(src.description()), s, "__metadata__." + key));
    }

    private static ModelWeights map(Source src, java.util.function.Function<Map<String, TensorData>, KeyLayouts.Mapped> layout, String what) {
        Map<String, TensorData> all = new java.util.LinkedHashMap<>();
        src.files().forEach(f -> all.putAll(f.tensors()));
        KeyLayouts.Mapped mapped = layout.apply(all);
        if (mapped.tensors().isEmpty()) {
            src.files().forEach(TensorFile::close);
            List<String> sample = new ArrayList<>(all.keySet()).subList(0, Math.min(5, all.size()));
            throw new CheckpointException(src.description() + ": no " + what + " weights recognised (first keys: " + sample + ")");
        }
        return new ModelWeights(src.description(), mapped.layout(), mapped.tensors(), src.files());
    }

    private static Map<String, Object> readJson(Path file) {
        try {
            return parseJson(file, Files.readString(file), "config.json");
        } catch (IOException e) {
            throw new CheckpointException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> parseJson(Path file, String text, String what) {
        try {
            if (Json.parse(text) instanceof Map<?, ?> m) return (Map<String, Object>) m;
            throw new CheckpointException(file + ": " + what + " is not a JSON object");
        } catch (IOException e) {
            throw new CheckpointException(file + ": " + what + " is not valid JSON: " + e.getMessage());
        }
    }
}
