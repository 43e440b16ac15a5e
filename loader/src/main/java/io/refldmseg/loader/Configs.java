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
                UNetConfig.DEFAULT_GROUPS, UNetConfig.DEFAULT_EPS, crossDim == 0 ? 768 : crossDim,
                Collections.nCopies(levels, UNetConfig.DEFAULT_HEADS), hid, linearProj, true, 0);
    }

    public static UNetConfig unetFromJson(Map<String, Object> j, String source) {
        List<Integer> channels = ints(j, "block_out_channels", source);
        int levels = channels.size();
        List<Integer> headList = j.get("attention_head_dim") instanceof List<?> ? ints(j, "attention_head_dim", source)
                : Collections.nCopies(levels, integer(j, "attention_head_dim", UNetConfig.DEFAULT_HEADS, source));
        return checked(new UNetConfig(integer(j, "in_channels", 4, source), integer(j, "out_channels", 4, source), channels,
                strings(j, "down_block_types", source), strings(j, "up_block_types", source), integer(j, "layers_per_block", 2, source),
                integer(j, "norm_num_groups", UNetConfig.DEFAULT_GROUPS, source), number(j, "norm_eps", UNetConfig.DEFAULT_EPS, source),
                integer(j, "cross_attention_dim", 768, source), headList, integer(j, "encoder_hid_dim", 0, source),
                bool(j, "use_linear_projection", false, source), bool(j, "flip_sin_to_cos", true, source),
                integer(j, "freq_shift", 0, source)), source);
    }

    /**
     * Bounds every UNet config value (the final one, from JSON or shapes) so that no network
     * arithmetic divides by zero or overflows. Whether groups and heads divide the widths is the
     * network's check (a file without a config can be loaded and given one).
     */
    public static UNetConfig checked(UNetConfig c, String source) {
        int levels = c.levels();
        range(source, "block_out_channels (levels)", levels, 1, MAX_LEVELS);
        range(source, "in_channels", c.inChannels(), 1, MAX_CHANNELS);
        range(source, "out_channels", c.outChannels(), 1, MAX_CHANNELS);
        range(source, "layers_per_block", c.layersPerBlock(), 1, MAX_LAYERS);
        range(source, "norm_num_groups", c.normNumGroups(), 1, MAX_CHANNELS);
        range(source, "cross_attention_dim", c.crossAttentionDim(), 1, MAX_WIDTH);
        range(source, "encoder_hid_dim", c.encoderHidDim(), 0, MAX_WIDTH);
        range(source, "freq_shift", c.freqShift(), -MAX_CHANNELS, MAX_CHANNELS);
        if (!(c.normEps() > 0 && c.normEps() < 1)) throw bad(source, "norm_eps", c.normEps() + " is not in (0, 1)");
        if (c.downBlockTypes().size() != levels || c.upBlockTypes().size() != levels || c.attentionHeads().size() != levels)
            throw bad(source, "block_out_channels", "lists " + levels + " levels but down_block_types has "
                    + c.downBlockTypes().size() + ", up_block_types " + c.upBlockTypes().size() + ", attention_head_dim "
                    + c.attentionHeads().size());
        for (int i = 0; i < levels; i++) {
            int ch = c.blockOutChannels().get(i);
            range(source, "block_out_channels[" + i + "]", ch, 1, MAX_CHANNELS);
            int heads = c.attentionHeads().get(i);
            range(source, "attention_head_dim[" + i + "]", heads, 1, MAX_CHANNELS);
            oneOf(source, "down_block_types[" + i + "]", c.downBlockTypes().get(i), "CrossAttnDownBlock2D", "DownBlock2D");
            oneOf(source, "up_block_types[" + i + "]", c.upBlockTypes().get(i), "CrossAttnUpBlock2D", "UpBlock2D");
        }
        return c;
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
        return checked(new VaeConfig(integer(j, "in_channels", 3, source), integer(j, "out_channels", 3, source),
                ints(j, "block_out_channels", source), integer(j, "layers_per_block", 2, source), integer(j, "latent_channels", 4, source),
                integer(j, "norm_num_groups", VaeConfig.DEFAULT_GROUPS, source),
                number(j, "scaling_factor", VaeConfig.DEFAULT_SCALING, source)), source);
    }

    public static VaeConfig checked(VaeConfig c, String source) {
        range(source, "block_out_channels (levels)", c.blockOutChannels().size(), 1, MAX_LEVELS);
        range(source, "in_channels", c.inChannels(), 1, MAX_CHANNELS);
        range(source, "out_channels", c.outChannels(), 1, MAX_CHANNELS);
        range(source, "layers_per_block", c.layersPerBlock(), 1, MAX_LAYERS);
        range(source, "latent_channels", c.latentChannels(), 1, MAX_CHANNELS);
        range(source, "norm_num_groups", c.normNumGroups(), 1, MAX_CHANNELS);
        if (!(c.scalingFactor() > 0 && Double.isFinite(c.scalingFactor())))
            throw bad(source, "scaling_factor", c.scalingFactor() + " is not a positive finite number");
        for (int i = 0; i < c.blockOutChannels().size(); i++) {
            int ch = c.blockOutChannels().get(i);
            range(source, "block_out_channels[" + i + "]", ch, 1, MAX_CHANNELS);
        }
        return c;
    }

    // ---- CLIP vision tower ----

    public static ClipConfig inferClip(ModelWeights w) {
        TensorData conv1 = w.get("conv1.weight");
        int width = conv1.dim(0), patch = conv1.dim(2);
        int tokens = w.get("positional_embedding").dim(0);
        if (tokens < 2) throw new CheckpointException(w.source() + ": positional_embedding has " + tokens + " rows, not 1 + a square grid");
        int grid = (int) Math.round(Math.sqrt(tokens - 1));
        if (grid * grid != tokens - 1)
            throw new CheckpointException(w.source() + ": positional_embedding has " + tokens + " rows, not 1 + a square grid");
        return new ClipConfig(grid * patch, patch, width, w.count("transformer.resblocks.", ".ln_1.weight"),
                ClipConfig.defaultHeads(width));
    }

    public static ClipConfig checked(ClipConfig c, String source) {
        range(source, "patch_size", c.patchSize(), 1, MAX_RESOLUTION);
        range(source, "input_resolution", c.inputResolution(), 1, MAX_RESOLUTION);
        range(source, "width", c.width(), 1, MAX_WIDTH);
        range(source, "layers", c.layers(), 1, MAX_LAYERS);
        range(source, "heads", c.heads(), 1, MAX_WIDTH);
        if (c.inputResolution() % c.patchSize() != 0)
            throw bad(source, "input_resolution", c.inputResolution() + " is not a multiple of patch_size " + c.patchSize());
        if (c.width() % c.heads() != 0) throw bad(source, "heads", c.heads() + " does not divide width " + c.width());
        return c;
    }

    /** JSON values override the inferred ones (OpenAI-style "width/layers/heads" or HF-style names). */
    public static ClipConfig clipFromJson(Map<String, Object> j, ClipConfig inferred, String source) {
        return checked(new ClipConfig(integer(j, "input_resolution", integer(j, "image_size", inferred.inputResolution(), source), source),
                integer(j, "patch_size", inferred.patchSize(), source),
                integer(j, "width", integer(j, "hidden_size", inferred.width(), source), source),
                integer(j, "layers", integer(j, "num_hidden_layers", inferred.layers(), source), source),
                integer(j, "heads", integer(j, "num_attention_heads", inferred.heads(), source), source)), source);
    }

    // Far beyond any SD / CLIP model, small enough that no product of them overflows an int.
    private static final int MAX_LEVELS = 8, MAX_LAYERS = 256, MAX_CHANNELS = 1 << 14, MAX_WIDTH = 1 << 16, MAX_RESOLUTION = 1 << 14;

    /** An integer field: absent or null gives {@code dflt}; anything but an integral number in int range is an error naming the key. */
    private static int integer(Map<String, Object> j, String key, int dflt, String source) {
        Object v = j.get(key);
        return v == null ? dflt : integral(v, key, source);
    }

    private static int integral(Object v, String key, String source) {
        if (v instanceof Number n && !(v instanceof Double) && !(v instanceof java.math.BigInteger) && !(v instanceof java.math.BigDecimal)
                && n.longValue() >= Integer.MIN_VALUE && n.longValue() <= Integer.MAX_VALUE) return n.intValue();
        if (v instanceof Double d && d == Math.rint(d) && Math.abs(d) <= Integer.MAX_VALUE) return d.intValue();
        throw bad(source, key, describe(v) + " is not an integer in range");
    }

    private static double number(Map<String, Object> j, String key, double dflt, String source) {
        Object v = j.get(key);
        if (v == null) return dflt;
        if (v instanceof Number n && Double.isFinite(n.doubleValue())) return n.doubleValue();
        throw bad(source, key, describe(v) + " is not a finite number");
    }

    private static boolean bool(Map<String, Object> j, String key, boolean dflt, String source) {
        Object v = j.get(key);
        if (v == null) return dflt;
        if (v instanceof Boolean b) return b;
        throw bad(source, key, describe(v) + " is not true or false");
    }

    private static List<Integer> ints(Map<String, Object> j, String key, String source) {
        if (!(j.get(key) instanceof List<?> l)) throw bad(source, key, "missing or not a list");
        if (l.size() > MAX_LEVELS) throw bad(source, key, "has " + l.size() + " entries (at most " + MAX_LEVELS + ")");
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < l.size(); i++) out.add(integral(l.get(i), key + "[" + i + "]", source));
        return List.copyOf(out);
    }

    private static List<String> strings(Map<String, Object> j, String key, String source) {
        if (!(j.get(key) instanceof List<?> l)) throw bad(source, key, "missing or not a list");
        List<String> out = new ArrayList<>();
        for (int i = 0; i < l.size(); i++) {
            if (!(l.get(i) instanceof String s)) throw bad(source, key + "[" + i + "]", describe(l.get(i)) + " is not a string");
            out.add(s);
        }
        return List.copyOf(out);
    }

    private static void range(String source, String key, int v, int min, int max) {
        if (v < min || v > max) throw bad(source, key, v + " is outside [" + min + ", " + max + "]");
    }

    private static void oneOf(String source, String key, String v, String... allowed) {
        if (!List.of(allowed).contains(v)) throw bad(source, key, "'" + v + "' is not one of " + List.of(allowed));
    }

    private static String describe(Object v) {
        String s = v instanceof String str ? "\"" + str + "\"" : String.valueOf(v);
        return s.length() > 40 ? s.substring(0, 40) + "..." : s;
    }

    private static CheckpointException bad(String source, String key, String what) {
        return new CheckpointException(source + ": config field '" + key + "': " + what);
    }
}
