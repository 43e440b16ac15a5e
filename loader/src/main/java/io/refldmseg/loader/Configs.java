package io.refldmseg.loader;

import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/** Architecture configs: read from diffusers-style JSON, or inferred from weight shapes. */
public final class Configs {
    private Configs() {
    }

    // ---- UNet ----

    public static UNetConfig inferUNet(ModelWeights w) {
        int levels = w.count("down_blocks.", ".resnets.0.conv1.weight");
        if (levels == 0) throw new CheckpointException(w.source() + ": UNet has no down_blocks.0.resnets.0.conv1.weight");
        List<Integer> channels = new ArrayList<>();
        List<String> down = new ArrayList<>(), up = new ArrayList<>();
        for (int i = 0; i < levels; i++) {
            channels.add(w.get("down_blocks." + i + ".resnets.0.conv1.weight").dim(0));
            down.add(w.has("down_blocks." + i + ".attentions.0.proj_in.weight") ? "CrossAttnDownBlock2D" : "DownBlock2D");
            up.add(w.has("up_blocks." + i + ".attentions.0.proj_in.weight") ? "CrossAttnUpBlock2D" : "UpBlock2D");
        }
        int crossDim = 0;
        boolean linearProj = false;
        for (String k : w.tensors().keySet()) {
            if (crossDim == 0 && k.endsWith(".attn2.to_k.weight")) crossDim = w.get(k).dim(1);
            if (k.endsWith(".proj_in.weight")) linearProj = w.get(k).rank() == 2;
        }
        int hid = w.has("encoder_hid_proj.weight") ? w.get("encoder_hid_proj.weight").dim(1) : 0;
        return new UNetConfig(w.get("conv_in.weight").dim(1), w.get("conv_out.weight").dim(0), List.copyOf(channels),
                List.copyOf(down), List.copyOf(up), w.count("down_blocks.0.resnets.", ".conv1.weight"),
                UNetConfig.DEFAULT_GROUPS, UNetConfig.DEFAULT_EPS, crossDim,
                Collections.nCopies(levels, UNetConfig.DEFAULT_HEADS), hid, linearProj, true, 0);
    }

    public static UNetConfig unetFromJson(Map<String, Object> j, String source) {
        List<Integer> channels = ints(j, "block_out_channels", source);
        int levels = channels.size();
        Object heads = j.getOrDefault("attention_head_dim", UNetConfig.DEFAULT_HEADS);
        List<Integer> headList = heads instanceof List<?> ? ints(j, "attention_head_dim", source)
                : Collections.nCopies(levels, ((Number) heads).intValue());
        Object hid = j.get("encoder_hid_dim");
        return new UNetConfig(integer(j, "in_channels", 4), integer(j, "out_channels", 4), channels,
                strings(j, "down_block_types", source), strings(j, "up_block_types", source), integer(j, "layers_per_block", 2),
                integer(j, "norm_num_groups", UNetConfig.DEFAULT_GROUPS), number(j, "norm_eps", UNetConfig.DEFAULT_EPS),
                integer(j, "cross_attention_dim", 768), headList, hid == null ? 0 : ((Number) hid).intValue(),
                Boolean.TRUE.equals(j.get("use_linear_projection")), !Boolean.FALSE.equals(j.get("flip_sin_to_cos")),
                integer(j, "freq_shift", 0));
    }

    // ---- VAE ----

    public static VaeConfig inferVae(ModelWeights w) {
        int levels = w.count("encoder.down_blocks.", ".resnets.0.conv1.weight");
        if (levels == 0) throw new CheckpointException(w.source() + ": VAE has no encoder.down_blocks.0.resnets.0.conv1.weight");
        List<Integer> channels = new ArrayList<>();
        for (int i = 0; i < levels; i++) channels.add(w.get("encoder.down_blocks." + i + ".resnets.0.conv1.weight").dim(0));
        return new VaeConfig(w.get("encoder.conv_in.weight").dim(1), w.get("decoder.conv_out.weight").dim(0),
                List.copyOf(channels), w.count("encoder.down_blocks.0.resnets.", ".conv1.weight"),
                w.get("decoder.conv_in.weight").dim(1), VaeConfig.DEFAULT_GROUPS, VaeConfig.DEFAULT_SCALING);
    }

    public static VaeConfig vaeFromJson(Map<String, Object> j, String source) {
        return new VaeConfig(integer(j, "in_channels", 3), integer(j, "out_channels", 3), ints(j, "block_out_channels", source),
                integer(j, "layers_per_block", 2), integer(j, "latent_channels", 4),
                integer(j, "norm_num_groups", VaeConfig.DEFAULT_GROUPS), number(j, "scaling_factor", VaeConfig.DEFAULT_SCALING));
    }

    // ---- CLIP vision tower ----

    public static ClipConfig inferClip(ModelWeights w) {
        TensorData conv1 = w.get("conv1.weight");
        int width = conv1.dim(0), patch = conv1.dim(2);
        int tokens = w.get("positional_embedding").dim(0);
        int grid = (int) Math.round(Math.sqrt(tokens - 1));
        if (grid * grid != tokens - 1)
            throw new CheckpointException(w.source() + ": positional_embedding has " + tokens + " rows, not 1 + a square grid");
        return new ClipConfig(grid * patch, patch, width, w.count("transformer.resblocks.", ".ln_1.weight"),
                ClipConfig.defaultHeads(width));
    }

    /** JSON values override the inferred ones (OpenAI-style "width/layers/heads" or HF-style names). */
    public static ClipConfig clipFromJson(Map<String, Object> j, ClipConfig inferred) {
        return new ClipConfig(integer(j, "input_resolution", integer(j, "image_size", inferred.inputResolution())),
                integer(j, "patch_size", inferred.patchSize()), integer(j, "width", integer(j, "hidden_size", inferred.width())),
                integer(j, "layers", integer(j, "num_hidden_layers", inferred.layers())),
                integer(j, "heads", integer(j, "num_attention_heads", inferred.heads())));
    }

    private static int integer(Map<String, Object> j, String key, int dflt) {
        Object v = j.get(key);
        return v instanceof Number n ? n.intValue() : dflt;
    }

    private static double number(Map<String, Object> j, String key, double dflt) {
        Object v = j.get(key);
        return v instanceof Number n ? n.doubleValue() : dflt;
    }

    private static List<Integer> ints(Map<String, Object> j, String key, String source) {
        if (!(j.get(key) instanceof List<?> l)) throw new CheckpointException(source + ": config field '" + key + "' missing or not a list");
        List<Integer> out = new ArrayList<>();
        for (Object o : l) {
            if (!(o instanceof Number n)) throw new CheckpointException(source + ": config field '" + key + "' holds a non-number");
            out.add(n.intValue());
        }
        return List.copyOf(out);
    }

    private static List<String> strings(Map<String, Object> j, String key, String source) {
        if (!(j.get(key) instanceof List<?> l)) throw new CheckpointException(source + ": config field '" + key + "' missing or not a list");
        return l.stream().map(String::valueOf).toList();
    }
}
