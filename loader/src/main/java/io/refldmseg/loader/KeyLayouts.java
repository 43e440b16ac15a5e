package io.refldmseg.loader;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Maps the key layouts people publish onto the engine's internal names. Which layout a file
 * uses is read from its keys; the user never has to say.
 */
public final class KeyLayouts {
    private KeyLayouts() {
    }

    public static final String SD_UNET_PREFIX = "model.diffusion_model.";
    public static final String SD_VAE_PREFIX = "first_stage_model.";

    /** The UNet tensors of {@code all} under diffusers names, and the layout they came in. */
    public static Mapped unet(Map<String, TensorData> all) {
        Map<String, TensorData> wrapped = stripPrefix(all, "module."); // a DDP/DeepSpeed-wrapped model's keys
        if (!wrapped.isEmpty() && wrapped.size() == all.size()) all = wrapped;
        Map<String, TensorData> own = stripPrefix(all, SD_UNET_PREFIX);
        if (own.isEmpty()) own = stripPrefix(all, "unet.");
        if (own.isEmpty()) own = all;
        if (own.containsKey("input_blocks.0.0.weight")) return new Mapped("original Stable Diffusion UNet", originalUnet(own));
        if (own.containsKey("conv_in.weight")) return new Mapped("diffusers UNet", own);
        return new Mapped("unknown", Map.of());
    }

    public static Mapped vae(Map<String, TensorData> all) {
        Map<String, TensorData> own = stripPrefix(all, SD_VAE_PREFIX);
        if (own.isEmpty()) own = stripPrefix(all, "vae.");
        if (own.isEmpty()) own = all;
        if (own.containsKey("encoder.down.0.block.0.conv1.weight")) return new Mapped("original Stable Diffusion VAE", originalVae(own));
        if (own.containsKey("encoder.conv_in.weight")) return new Mapped("diffusers VAE", legacyDiffusersVae(own));
        return new Mapped("unknown", Map.of());
    }

    public static Mapped clip(Map<String, TensorData> all) {
        Map<String, TensorData> visual = stripPrefix(all, "visual.");
        if (!visual.isEmpty()) {
            Map<String, TensorData> out = new LinkedHashMap<>();
            visual.forEach((k, v) -> {
                String n = k.replace(".attn.in_proj_weight", ".attn.in_proj.weight").replace(".attn.in_proj_bias", ".attn.in_proj.bias");
                out.put(n, v.renamed(n));
            });
            return new Mapped("OpenAI-CLIP full-model layout (visual.*)", out);
        }
        if (all.containsKey("conv1.weight")) return new Mapped("Alpha-CLIP visual layout", all);
        return new Mapped("unknown", Map.of());
    }

    /** Tensors mapped to internal names, and the layout they were found in. */
    public record Mapped(String layout, Map<String, TensorData> tensors) {
    }

    static Map<String, TensorData> stripPrefix(Map<String, TensorData> all, String prefix) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        all.forEach((k, v) -> {
            if (k.startsWith(prefix)) out.put(k.substring(prefix.length()), v);
        });
        return out;
    }

    // ---- original SD UNet -> diffusers ----

    private static final Pattern INPUT = Pattern.compile("input_blocks\\.(\\d+)\\.(\\d+)\\.(.*)");
    private static final Pattern MIDDLE = Pattern.compile("middle_block\\.(\\d+)\\.(.*)");
    private static final Pattern OUTPUT = Pattern.compile("output_blocks\\.(\\d+)\\.(\\d+)\\.(.*)");

    private static Map<String, TensorData> originalUnet(Map<String, TensorData> own) {
        int firstDown = Integer.MAX_VALUE;
        for (String k : own.keySet()) {
            Matcher m = INPUT.matcher(k);
            if (m.matches() && m.group(3).startsWith("op.")) firstDown = Math.min(firstDown, Integer.parseInt(m.group(1)));
        }
        int perLevel; // resnets per down level + 1 (the downsampler slot)
        if (firstDown == Integer.MAX_VALUE) {
            int blocks = 0;
            while (own.containsKey("input_blocks." + (blocks + 1) + ".0.in_layers.0.weight")) blocks++;
            perLevel = blocks + 1;
        } else {
            perLevel = firstDown;
        }
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : own.entrySet()) {
            String n = originalUnetName(e.getKey(), perLevel, own);
            out.put(n, e.getValue().renamed(n));
        }
        return out;
    }

    private static String originalUnetName(String k, int perLevel, Map<String, TensorData> own) {
        if (k.startsWith("time_embed.0.")) return "time_embedding.linear_1." + after(k, "time_embed.0.");
        if (k.startsWith("time_embed.2.")) return "time_embedding.linear_2." + after(k, "time_embed.2.");
        if (k.startsWith("out.0.")) return "conv_norm_out." + after(k, "out.0.");
        if (k.startsWith("out.2.")) return "conv_out." + after(k, "out.2.");
        if (k.startsWith("input_blocks.0.0.")) return "conv_in." + after(k, "input_blocks.0.0.");
        Matcher m = INPUT.matcher(k);
        if (m.matches()) {
            int b = Integer.parseInt(m.group(1)) - 1, sub = Integer.parseInt(m.group(2));
            int level = b / perLevel, j = b % perLevel;
            String rest = m.group(3);
            if (rest.startsWith("op.")) return "down_blocks." + level + ".downsamplers.0.conv." + after(rest, "op.");
            return sub == 0 ? "down_blocks." + level + ".resnets." + j + "." + resnet(rest)
                    : "down_blocks." + level + ".attentions." + j + "." + rest;
        }
        m = MIDDLE.matcher(k);
        if (m.matches()) {
            int i = Integer.parseInt(m.group(1));
            return switch (i) {
                case 0 -> "mid_block.resnets.0." + resnet(m.group(2));
                case 1 -> "mid_block.attentions.0." + m.group(2);
                default -> "mid_block.resnets.1." + resnet(m.group(2));
            };
        }
        m = OUTPUT.matcher(k);
        if (m.matches()) {
            int b = Integer.parseInt(m.group(1)), sub = Integer.parseInt(m.group(2));
            int level = b / perLevel, j = b % perLevel;
            String rest = m.group(3);
            if (sub == 0) return "up_blocks." + level + ".resnets." + j + "." + resnet(rest);
            boolean isUpsampler = rest.startsWith("conv.") && !own.containsKey("output_blocks." + b + "." + sub + ".norm.weight");
            if (isUpsampler) return "up_blocks." + level + ".upsamplers.0.conv." + after(rest, "conv.");
            return "up_blocks." + level + ".attentions." + j + "." + rest;
        }
        return k; // encoder_hid_proj and anything without an original-SD name keep their diffusers name
    }

    private static String resnet(String rest) {
        String[][] map = {{"in_layers.0.", "norm1."}, {"in_layers.2.", "conv1."}, {"emb_layers.1.", "time_emb_proj."},
                {"out_layers.0.", "norm2."}, {"out_layers.3.", "conv2."}, {"skip_connection.", "conv_shortcut."}};
        for (String[] p : map) if (rest.startsWith(p[0])) return p[1] + after(rest, p[0]);
        return rest;
    }

    // ---- original SD VAE -> diffusers ----

    private static final Pattern VAE_DOWN = Pattern.compile("encoder\\.down\\.(\\d+)\\.(block\\.(\\d+)|downsample)\\.(.*)");
    private static final Pattern VAE_UP = Pattern.compile("decoder\\.up\\.(\\d+)\\.(block\\.(\\d+)|upsample)\\.(.*)");
    private static final Pattern VAE_MID = Pattern.compile("(encoder|decoder)\\.mid\\.(block_1|block_2|attn_1)\\.(.*)");

    private static Map<String, TensorData> originalVae(Map<String, TensorData> own) {
        int upLevels = 0;
        while (own.containsKey("decoder.up." + upLevels + ".block.0.conv1.weight")) upLevels++;
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : own.entrySet()) {
            String k = e.getKey();
            TensorData t = e.getValue();
            String n = originalVaeName(k, upLevels);
            if (n.contains(".attentions.0.to_") && n.endsWith(".weight") && t.rank() == 4)
                t = t.reshaped(t.shape()[0], t.shape()[1]); // attention projections were 1x1 convs
            out.put(n, t.renamed(n));
        }
        return out;
    }

    private static String originalVaeName(String k, int upLevels) {
        Matcher m = VAE_DOWN.matcher(k);
        if (m.matches()) {
            String base = "encoder.down_blocks." + m.group(1);
            return m.group(3) != null ? base + ".resnets." + m.group(3) + "." + vaeResnet(m.group(4))
                    : base + ".downsamplers.0." + m.group(4);
        }
        m = VAE_UP.matcher(k);
        if (m.matches()) {
            String base = "decoder.up_blocks." + (upLevels - 1 - Integer.parseInt(m.group(1)));
            return m.group(3) != null ? base + ".resnets." + m.group(3) + "." + vaeResnet(m.group(4))
                    : base + ".upsamplers.0." + m.group(4);
        }
        m = VAE_MID.matcher(k);
        if (m.matches()) {
            String base = m.group(1) + ".mid_block.";
            return switch (m.group(2)) {
                case "block_1" -> base + "resnets.0." + vaeResnet(m.group(3));
                case "block_2" -> base + "resnets.1." + vaeResnet(m.group(3));
                default -> base + "attentions.0." + vaeAttention(m.group(3));
            };
        }
        if (k.startsWith("encoder.norm_out.")) return "encoder.conv_norm_out." + after(k, "encoder.norm_out.");
        if (k.startsWith("decoder.norm_out.")) return "decoder.conv_norm_out." + after(k, "decoder.norm_out.");
        return k;
    }

    private static String vaeResnet(String rest) {
        return rest.startsWith("nin_shortcut.") ? "conv_shortcut." + after(rest, "nin_shortcut.") : rest;
    }

    private static String vaeAttention(String rest) {
        String[][] map = {{"norm.", "group_norm."}, {"q.", "to_q."}, {"k.", "to_k."}, {"v.", "to_v."}, {"proj_out.", "to_out.0."}};
        for (String[] p : map) if (rest.startsWith(p[0])) return p[1] + after(rest, p[0]);
        return rest;
    }

    /** diffusers before 0.14 named the VAE attention query/key/value/proj_attn. */
    private static Map<String, TensorData> legacyDiffusersVae(Map<String, TensorData> own) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        own.forEach((k, v) -> {
            String n = k.replace(".attentions.0.query.", ".attentions.0.to_q.").replace(".attentions.0.key.", ".attentions.0.to_k.")
                    .replace(".attentions.0.value.", ".attentions.0.to_v.").replace(".attentions.0.proj_attn.", ".attentions.0.to_out.0.");
            out.put(n, n.equals(k) ? v : v.renamed(n));
        });
        return out;
    }

    private static String after(String s, String prefix) {
        return s.substring(prefix.length());
    }
}
