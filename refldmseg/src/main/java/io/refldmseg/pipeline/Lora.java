package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.LoraAdapter;
import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.Json;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;
import io.refldmseg.model.Projection;
import io.refldmseg.model.UNet2DConditionModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * LoRA files for the UNet's attention projections (q, k, v, out) in the three formats people
 * publish: kohya ({@code lora_unet_<path>.lora_down/lora_up/alpha}), PEFT ({@code <path>.lora_A/lora_B},
 * alpha from adapter_config.json beside the file) and diffusers' older attention processors
 * ({@code <path>.processor.to_q_lora.down/up}). scale = alpha / rank x strength. Adapters stay
 * unmerged: the base weights are never touched.
 */
public final class Lora {
    /** One loaded file: an adapter per targeted projection. */
    public record Adapter(String source, Map<String, LoraAdapter> byProjection) {
    }

    private final Map<String, Projection> projections;
    private final Map<String, String> kohyaNames = new HashMap<>();
    private final Backend be;

    Lora(UNet2DConditionModel unet, Backend be) {
        this.projections = unet.projections();
        this.be = be;
        for (String name : projections.keySet()) kohyaNames.put(name.replace('.', '_'), name);
    }

    void apply(List<Adapter> adapters) {
        Map<String, List<LoraAdapter>> per = new HashMap<>();
        for (Adapter a : adapters) a.byProjection().forEach((k, v) -> per.computeIfAbsent(k, x -> new ArrayList<>()).add(v));
        projections.forEach((name, p) -> p.setAdapters(per.getOrDefault(name, List.of())));
    }

    private static final Pattern KOHYA = Pattern.compile("lora_unet_(.+)\\.(lora_down|lora_up)\\.weight|lora_unet_(.+)\\.alpha");
    private static final Pattern PEFT = Pattern.compile("(?:base_model\\.model\\.)?(?:unet\\.)?(.+)\\.(lora_A|lora_B)(?:\\.default)?\\.weight");
    private static final Pattern OLD = Pattern.compile("(?:unet\\.)?(.+)\\.processor\\.(to_q|to_k|to_v|to_out)_lora\\.(down|up)\\.weight");

    Adapter load(Path file, float strength) {
        if (!Float.isFinite(strength)) throw new IllegalArgumentException(file + ": LoRA strength must be a finite number, got " + strength);
        try (TensorFile tf = TensorFile.open(file)) {
            Map<String, TensorData[]> pairs = new LinkedHashMap<>(); // projection -> {down, up}
            Map<String, Float> alphas = new HashMap<>();
            int ignored = 0;
            for (Map.Entry<String, TensorData> e : tf.tensors().entrySet()) {
                String key = e.getKey();
                Matcher m;
                String target = null;
                int slot = -1;
                if ((m = KOHYA.matcher(key)).matches()) {
                    if (m.group(3) != null) {
                        String t = kohyaNames.get(m.group(3));
                        if (t != null) alphas.put(t, e.getValue().toFloats()[0]);
                        continue;
                    }
                    target = kohyaNames.get(m.group(1));
                    slot = m.group(2).equals("lora_down") ? 0 : 1;
                } else if ((m = OLD.matcher(key)).matches()) {
                    target = m.group(1) + "." + (m.group(2).equals("to_out") ? "to_out.0" : m.group(2));
                    slot = m.group(3).equals("down") ? 0 : 1;
                } else if ((m = PEFT.matcher(key)).matches()) {
                    target = m.group(1);
                    slot = m.group(2).equals("lora_A") ? 0 : 1;
                }
                if (target == null || !projections.containsKey(target)) {
                    ignored++;
                    continue;
                }
                pairs.computeIfAbsent(target, k -> new TensorData[2])[slot] = e.getValue();
            }
            if (pairs.isEmpty())
                throw new CheckpointException(file + ": no LoRA weights for the UNet's attention projections found (" + ignored
                        + " tensors in other formats or for other modules)");
            Float peftAlpha = peftAlpha(file);
            Map<String, LoraAdapter> out = new LinkedHashMap<>();
            for (Map.Entry<String, TensorData[]> e : pairs.entrySet()) {
                TensorData down = e.getValue()[0], up = e.getValue()[1];
                if (down == null || up == null)
                    throw new CheckpointException(file + ": LoRA for '" + e.getKey() + "' has only its " + (down == null ? "up" : "down") + " matrix");
                Projection p = projections.get(e.getKey());
                int rank = down.dim(0);
                if (down.rank() != 2 || up.rank() != 2 || down.dim(1) != p.inFeatures() || up.dim(0) != p.outFeatures() || up.dim(1) != rank)
                    throw new CheckpointException(file + ": LoRA for '" + e.getKey() + "' has down " + java.util.Arrays.toString(down.shape())
                            + " and up " + java.util.Arrays.toString(up.shape()) + ", the projection is " + p.inFeatures() + " -> " + p.outFeatures());
                float alpha = alphas.getOrDefault(e.getKey(), peftAlpha != null ? peftAlpha : rank);
                out.put(e.getKey(), new LoraAdapter(be.linearWeights(down.toFloats(), rank, down.dim(1), null),
                        be.linearWeights(up.toFloats(), up.dim(0), rank, null), alpha / rank * strength));
            }
            return new Adapter(file.toString(), out);
        }
    }

    /** lora_alpha from a PEFT adapter_config.json beside the weights, if there is one. */
    private static Float peftAlpha(Path file) {
        Path cfg = file.toAbsolutePath().getParent().resolve("adapter_config.json");
        if (!Files.isRegularFile(cfg)) return null;
        try {
            if (Json.parse(Files.readString(cfg)) instanceof Map<?, ?> m && m.get("lora_alpha") instanceof Number n) return n.floatValue();
            return null;
        } catch (IOException e) {
            throw new CheckpointException(cfg + ": not valid JSON: " + e.getMessage());
        }
    }
}
