package io.refldmseg.model;

import io.refldmseg.loader.DType;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Random weights with exactly the parameter names and shapes a checkpoint of the given
 * architecture has, stored as fp16 like the checkpoints people download. Full-size SD1.5 / ViT-L
 * networks can be built and timed without a 4 GB download. Values: uniform with variance
 * 1/fan_in for weights, 1 +- 0.1 for norm scales, +-0.05 for biases; deterministic per name.
 */
public final class SyntheticWeights {
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final long seed;

    private SyntheticWeights(long seed) {
        this.seed = seed;
    }

    public static ModelWeights unet(UNetConfig c, long seed) {
        return unetLayout(c, seed).build("synthetic SD UNet");
    }

    /** The names and shapes of a diffusers UNet of config {@code c}, in checkpoint order (no values made). */
    public static Map<String, long[]> unetShapes(UNetConfig c) {
        return java.util.Collections.unmodifiableMap(unetLayout(c, 0).shapes);
    }

    private static SyntheticWeights unetLayout(UNetConfig c, long seed) {
        SyntheticWeights s = new SyntheticWeights(seed);
        int c0 = c.blockOutChannels().getFirst(), temb = 4 * c0, levels = c.levels(), lpb = c.layersPerBlock();
        s.conv("conv_in", c0, c.inChannels(), 3);
        s.linear("time_embedding.linear_1", temb, c0, true);
        s.linear("time_embedding.linear_2", temb, temb, true);
        if (c.encoderHidDim() > 0) s.linear("encoder_hid_proj", c.crossAttentionDim(), c.encoderHidDim(), true);
        int prev = c0;
        for (int i = 0; i < levels; i++) {
            int out = c.blockOutChannels().get(i);
            for (int j = 0; j < lpb; j++) {
                s.resnet("down_blocks." + i + ".resnets." + j, j == 0 ? prev : out, out, temb);
                if (c.downHasAttention(i)) s.transformer("down_blocks." + i + ".attentions." + j, out, c);
            }
            if (i < levels - 1) s.conv("down_blocks." + i + ".downsamplers.0.conv", out, out, 3);
            prev = out;
        }
        int last = c.blockOutChannels().getLast();
        s.resnet("mid_block.resnets.0", last, last, temb);
        s.transformer("mid_block.attentions.0", last, c);
        s.resnet("mid_block.resnets.1", last, last, temb);
        List<Integer> rev = c.blockOutChannels().reversed();
        prev = last;
        for (int i = 0; i < levels; i++) {
            int out = rev.get(i), skipIn = rev.get(Math.min(i + 1, levels - 1));
            for (int j = 0; j <= lpb; j++) {
                int skip = j == lpb ? skipIn : out, in = j == 0 ? prev : out;
                s.resnet("up_blocks." + i + ".resnets." + j, in + skip, out, temb);
                if (c.upHasAttention(i)) s.transformer("up_blocks." + i + ".attentions." + j, out, c);
            }
            if (i < levels - 1) s.conv("up_blocks." + i + ".upsamplers.0.conv", out, out, 3);
            prev = out;
        }
        s.norm("conv_norm_out", c0);
        s.conv("conv_out", c.outChannels(), c0, 3);
        return s;
    }

    public static ModelWeights vae(VaeConfig c, long seed) {
        SyntheticWeights s = new SyntheticWeights(seed);
        List<Integer> bo = c.blockOutChannels();
        int levels = bo.size(), lat = c.latentChannels(), last = bo.getLast();
        s.conv("encoder.conv_in", bo.getFirst(), c.inChannels(), 3);
        int prev = bo.getFirst();
        for (int i = 0; i < levels; i++) {
            int out = bo.get(i);
            for (int j = 0; j < c.layersPerBlock(); j++) s.resnet("encoder.down_blocks." + i + ".resnets." + j, j == 0 ? prev : out, out, 0);
            if (i < levels - 1) s.conv("encoder.down_blocks." + i + ".downsamplers.0.conv", out, out, 3);
            prev = out;
        }
        s.vaeMid("encoder.mid_block", last);
        s.norm("encoder.conv_norm_out", last);
        s.conv("encoder.conv_out", 2 * lat, last, 3);
        s.conv("quant_conv", 2 * lat, 2 * lat, 1);
        s.conv("post_quant_conv", lat, lat, 1);
        s.conv("decoder.conv_in", last, lat, 3);
        s.vaeMid("decoder.mid_block", last);
        List<Integer> rev = bo.reversed();
        prev = last;
        for (int i = 0; i < levels; i++) {
            int out = rev.get(i);
            for (int j = 0; j <= c.layersPerBlock(); j++) s.resnet("decoder.up_blocks." + i + ".resnets." + j, j == 0 ? prev : out, out, 0);
            if (i < levels - 1) s.conv("decoder.up_blocks." + i + ".upsamplers.0.conv", out, out, 3);
            prev = out;
        }
        s.norm("decoder.conv_norm_out", bo.getFirst());
        s.conv("decoder.conv_out", c.outChannels(), bo.getFirst(), 3);
        return s.build("synthetic SD VAE");
    }

    public static ModelWeights clip(ClipConfig c, long seed) {
        SyntheticWeights s = new SyntheticWeights(seed);
        int w = c.width(), tokens = c.gridSize() * c.gridSize() + 1;
        s.shapes.put("conv1.weight", new long[]{w, 3, c.patchSize(), c.patchSize()});
        s.shapes.put("conv1_alpha.weight", new long[]{w, 1, c.patchSize(), c.patchSize()});
        s.shapes.put("class_embedding", new long[]{w});
        s.shapes.put("positional_embedding", new long[]{tokens, w});
        s.norm("ln_pre", w);
        for (int i = 0; i < c.layers(); i++) {
            String b = "transformer.resblocks." + i;
            s.norm(b + ".ln_1", w);
            s.linear(b + ".attn.in_proj", 3 * w, w, true);
            s.linear(b + ".attn.out_proj", w, w, true);
            s.norm(b + ".ln_2", w);
            s.linear(b + ".mlp.c_fc", 4 * w, w, true);
            s.linear(b + ".mlp.c_proj", w, 4 * w, true);
        }
        return s.build("synthetic Alpha-CLIP ViT");
    }

    private void conv(String p, int out, int in, int k) {
        shapes.put(p + ".weight", new long[]{out, in, k, k});
        shapes.put(p + ".bias", new long[]{out});
    }

    private void linear(String p, int out, int in, boolean bias) {
        shapes.put(p + ".weight", new long[]{out, in});
        if (bias) shapes.put(p + ".bias", new long[]{out});
    }

    private void norm(String p, int c) {
        shapes.put(p + ".weight", new long[]{c});
        shapes.put(p + ".bias", new long[]{c});
    }

    private void resnet(String p, int in, int out, int temb) {
        norm(p + ".norm1", in);
        conv(p + ".conv1", out, in, 3);
        if (temb > 0) linear(p + ".time_emb_proj", out, temb, true);
        norm(p + ".norm2", out);
        conv(p + ".conv2", out, out, 3);
        if (in != out) conv(p + ".conv_shortcut", out, in, 1);
    }

    private void transformer(String p, int ch, UNetConfig c) {
        norm(p + ".norm", ch);
        if (c.useLinearProjection()) linear(p + ".proj_in", ch, ch, true);
        else conv(p + ".proj_in", ch, ch, 1);
        String b = p + ".transformer_blocks.0";
        for (int n = 1; n <= 3; n++) norm(b + ".norm" + n, ch);
        for (String a : new String[]{".attn1", ".attn2"}) {
            int kv = a.equals(".attn1") ? ch : c.crossAttentionDim();
            linear(b + a + ".to_q", ch, ch, false);
            linear(b + a + ".to_k", ch, kv, false);
            linear(b + a + ".to_v", ch, kv, false);
            linear(b + a + ".to_out.0", ch, ch, true);
        }
        linear(b + ".ff.net.0.proj", 8 * ch, ch, true);
        linear(b + ".ff.net.2", ch, 4 * ch, true);
        if (c.useLinearProjection()) linear(p + ".proj_out", ch, ch, true);
        else conv(p + ".proj_out", ch, ch, 1);
    }

    private void vaeMid(String p, int ch) {
        resnet(p + ".resnets.0", ch, ch, 0);
        norm(p + ".attentions.0.group_norm", ch);
        for (String a : new String[]{"to_q", "to_k", "to_v", "to_out.0"}) linear(p + ".attentions.0." + a, ch, ch, true);
        resnet(p + ".resnets.1", ch, ch, 0);
    }

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private ModelWeights build(String source) {
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        shapes.forEach((name, shape) -> {
            long n = java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b);
            MemorySegment seg = MemorySegment.ofArray(new byte[Math.toIntExact(n * 2)]);
            boolean isBias = name.endsWith(".bias"), isNorm = shape.length == 1 && !isBias;
            double fanIn = shape.length >= 2 ? (double) n / shape[0] : 1;
            float amplitude = (float) (isBias ? 0.05 : isNorm ? 0.1 : Math.sqrt(3.0 / fanIn));
            float offset = isNorm && !name.contains("embedding") ? 1f : 0f;
            long base = seed * 0x9E3779B97F4A7C15L ^ name.hashCode();
            IntStream.range(0, (int) ((n + 4095) / 4096)).parallel().forEach(chunk -> {
                long state = mix(base + chunk);
                for (long i = chunk * 4096L, end = Math.min(n, i + 4096); i < end; i++) {
                    state = mix(state);
                    float u = (state >>> 40) / (float) (1 << 24) * 2f - 1f;
                    seg.set(F16, i * 2, Float.floatToFloat16(offset + amplitude * u));
                }
            });
            tensors.put(name, TensorData.contiguous(source, name, DType.F16, shape, seg));
        });
        return new ModelWeights(source, "synthetic (random fp16)", tensors, List.of());
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
