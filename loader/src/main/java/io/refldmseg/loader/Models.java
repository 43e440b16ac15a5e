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
        return load(resolve(path, "unet"), "UNet", KeyLayouts::unet, "unet_config", Configs::inferUNet,
                (json, inferred, source) -> Configs.unetFromJson(json, source), Configs::checked);
    }

    public static Loaded<VaeConfig> vae(Path path) {
        return load(resolve(path, "vae"), "VAE", KeyLayouts::vae, "vae_config", Configs::inferVae,
                (json, inferred, source) -> Configs.vaeFromJson(json, source), Configs::checked);
    }

    public static Loaded<ClipConfig> clip(Path path) {
        return load(resolve(path, "image_encoder"), "vision tower", KeyLayouts::clip, null, Configs::inferClip,
                (json, inferred, source) -> Configs.clipFromJson(json, inferred, source), Configs::checked);
    }

    /** The UNet of an open file, with {@code configJson} as its config.json (null: none); tests and fuzzing. */
    static Loaded<UNetConfig> unet(TensorFile file, String configJson) {
        return load(source(file, configJson), "UNet", KeyLayouts::unet, "unet_config", Configs::inferUNet,
                (json, inferred, source) -> Configs.unetFromJson(json, source), Configs::checked);
    }

    static Loaded<VaeConfig> vae(TensorFile file, String configJson) {
        return load(source(file, configJson), "VAE", KeyLayouts::vae, "vae_config", Configs::inferVae,
                (json, inferred, source) -> Configs.vaeFromJson(json, source), Configs::checked);
    }

    static Loaded<ClipConfig> clip(TensorFile file, String configJson) {
        return load(source(file, configJson), "vision tower", KeyLayouts::clip, null, Configs::inferClip,
                (json, inferred, source) -> Configs.clipFromJson(json, inferred, source), Configs::checked);
    }

    private static Source source(TensorFile file, String configJson) {
        Optional<Map<String, Object>> config = configJson != null ? Optional.of(parseJson(file.path(), configJson, "config.json"))
                : Optional.ofNullable(file.metadata().get("config")).map(s -> parseJson(file.path(), s, "__metadata__.config"));
        return new Source(file.path().toString(), List.of(file), config);
    }

    private interface FromJson<C> {
        C config(Map<String, Object> json, C inferred, String source);
    }

    /**
     * Opens the weights, maps their layout, and takes the architecture from config.json, the file's
     * "config" metadata or its {@code metadataKey} metadata (single-file SD) when present. The
     * shape inference always runs: it also checks that the core tensors are there. The final
     * config is range-checked ({@code check}) so no network arithmetic divides by zero.
     */
    private static <C> Loaded<C> load(Source src, String what,
                                      java.util.function.Function<Map<String, TensorData>, KeyLayouts.Mapped> layout,
                                      String metadataKey, java.util.function.Function<ModelWeights, C> infer, FromJson<C> fromJson,
                                      java.util.function.BiFunction<C, String, C> check) {
        ModelWeights w = map(src, layout, what);
        try {
            Optional<Map<String, Object>> json = metadataKey == null ? src.config() : src.config().or(() -> metadataConfig(src, metadataKey));
            C inferred = infer.apply(w);
            C config = check.apply(json.map(j -> fromJson.config(j, inferred, w.source())).orElse(inferred), w.source());
            return new Loaded<>(config, w,
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
