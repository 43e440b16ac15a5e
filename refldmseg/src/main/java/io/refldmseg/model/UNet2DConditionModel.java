package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.config.UNetConfig;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * diffusers UNet2DConditionModel (SD1.5 structure, v0.25): time embedding, optional
 * encoder_hid_proj adapter, down blocks (resnets, optional cross-attention transformers,
 * stride-2 downsampler), mid block, up blocks consuming the skip connections (nearest 2x
 * upsampler), GN-SiLU-conv_out. Channels-last throughout.
 */
public final class UNet2DConditionModel {
    private final Backend be;
    private final UNetConfig config;
    private final ConvWeights convIn, convOut;
    private final LinearWeights timeLinear1, timeLinear2, encoderHidProj;
    private final GroupNorm normOut;
    private final List<Level> down = new ArrayList<>(), up = new ArrayList<>();
    private final ResnetBlock midResnet0, midResnet1;
    private final Transformer2D midAttention;

    /** One down or up level: resnets, the transformers after them (if any), and its resampler. */
    private record Level(List<ResnetBlock> resnets, List<Transformer2D> attentions, ConvWeights resample) {
    }

    public UNet2DConditionModel(UNetConfig config, ModelWeights weights, Backend backend) {
        this.be = backend;
        this.config = config;
        Params p = new Params(weights, backend);
        int groups = config.normNumGroups(), levels = config.levels();
        float eps = (float) config.normEps();
        if (config.downBlockTypes().size() != levels || config.upBlockTypes().size() != levels || config.attentionHeads().size() != levels)
            throw new CheckpointException(weights.source() + ": UNet config lists " + levels + " block widths but "
                    + config.downBlockTypes().size() + " down / " + config.upBlockTypes().size() + " up block types");
        List<Integer> width = config.blockOutChannels();
        convIn = p.conv("conv_in", width.getFirst(), config.inChannels(), 3);
        timeLinear1 = p.linear("time_embedding.linear_1", Params.ANY, width.getFirst());
        int temb = timeLinear1.outFeatures();
        timeLinear2 = p.linear("time_embedding.linear_2", temb, temb);
        int context = config.crossAttentionDim();
        encoderHidProj = p.has("encoder_hid_proj.weight")
                ? p.linear("encoder_hid_proj", context, config.encoderHidDim() > 0 ? config.encoderHidDim() : Params.ANY) : null;
        Deque<Integer> skipChannels = new ArrayDeque<>(); // widths of the skip connections, as forward pushes them
        int ch = width.getFirst();
        skipChannels.push(ch);
        for (int i = 0; i < levels; i++) {
            String prefix = "down_blocks." + i;
            List<ResnetBlock> resnets = new ArrayList<>();
            List<Transformer2D> attns = new ArrayList<>();
            for (int j = 0; j < config.layersPerBlock(); j++) {
                resnets.add(new ResnetBlock(p, prefix + ".resnets." + j, ch, width.get(i), temb, groups, eps));
                ch = width.get(i);
                if (config.downHasAttention(i))
                    attns.add(new Transformer2D(p, prefix + ".attentions." + j, ch, context, groups, config.attentionHeads().get(i)));
                skipChannels.push(ch);
            }
            ConvWeights ds = i < levels - 1 ? p.conv(prefix + ".downsamplers.0.conv", ch, ch, 3) : null;
            if (ds != null) skipChannels.push(ch);
            down.add(new Level(resnets, attns, ds));
        }
        int midHeads = config.attentionHeads().get(levels - 1);
        midResnet0 = new ResnetBlock(p, "mid_block.resnets.0", ch, ch, temb, groups, eps);
        midAttention = new Transformer2D(p, "mid_block.attentions.0", ch, context, groups, midHeads);
        midResnet1 = new ResnetBlock(p, "mid_block.resnets.1", ch, ch, temb, groups, eps);
        for (int i = 0; i < levels; i++) {
            String prefix = "up_blocks." + i;
            int out = width.get(levels - 1 - i);
            List<ResnetBlock> resnets = new ArrayList<>();
            List<Transformer2D> attns = new ArrayList<>();
            for (int j = 0; j <= config.layersPerBlock(); j++) {
                resnets.add(new ResnetBlock(p, prefix + ".resnets." + j, ch + skipChannels.pop(), out, temb, groups, eps));
                ch = out;
                if (config.upHasAttention(i))
                    attns.add(new Transformer2D(p, prefix + ".attentions." + j, ch, context, groups, config.attentionHeads().get(levels - 1 - i)));
            }
            ConvWeights us = i < levels - 1 ? p.conv(prefix + ".upsamplers.0.conv", ch, ch, 3) : null;
            up.add(new Level(resnets, attns, us));
        }
        normOut = p.groupNorm("conv_norm_out", ch, groups, eps);
        convOut = p.conv("conv_out", config.outChannels(), ch, 3);
    }

    public UNetConfig config() {
        return config;
    }

    /** Every attention layer in forward order (down, mid, up; attn1 then attn2 of each transformer block). */
    public List<Attention> attentionLayers() {
        List<Attention> out = new ArrayList<>();
        for (Transformer2D t : transformers()) out.addAll(t.attentions());
        return List.copyOf(out);
    }

    /** Every attention projection by diffusers name (to_q, to_k, to_v, to_out.0), for LoRA. */
    public Map<String, Projection> projections() {
        Map<String, Projection> out = new LinkedHashMap<>();
        for (Attention a : attentionLayers()) for (Projection pr : a.projections()) out.put(pr.name, pr);
        return out;
    }

    public Tensor forward(Tensor sample, float[] timesteps, Tensor encoderHiddenStates, Tensor keyMask) {
        return forward(sample, timesteps, encoderHiddenStates, keyMask, Probe.NONE);
    }

    public Tensor forward(Tensor sample, float[] timesteps, Tensor encoderHiddenStates, Tensor keyMask, Probe probe) {
        return forward(sample, timesteps, encoderHiddenStates, keyMask, probe,
                new AttentionContext(AttentionContext.Network.UNET, timesteps[0], 0, java.util.Collections.nCopies(sample.dim(0),
                        AttentionContext.Branch.TEXT), 1, encoderHiddenStates.dim(1), null));
    }

    /**
     * @param sample              [B, H, W, in_channels]
     * @param timesteps           one per sample, or a single value for the whole batch
     * @param encoderHiddenStates [B, L, encoder_hid_dim] (or cross_attention_dim without an adapter)
     * @param keyMask             [B, L] with 1 = attend, 0 = masked, or null
     * @param where               what the attention processors are told about this call
     * @return predicted [B, H, W, out_channels]
     */
    public Tensor forward(Tensor sample, float[] timesteps, Tensor encoderHiddenStates, Tensor keyMask, Probe probe, AttentionContext where) {
        return forward(sample, timesteps, encoderHiddenStates, null, keyMask, probe, where);
    }

    /**
     * What the UNet computes from the encoder hidden states alone: encoder_hid_proj and every
     * attn2's to_k / to_v of it. The -n loop runs the same context through every step, so it
     * projects it once ({@link #contextProjections}) instead of once per step; results are the
     * same bits either way. Valid while the attention projections' LoRA adapters stay as they were.
     */
    public static final class ContextProjections {
        private final UNet2DConditionModel unet;
        private final Tensor encoderHiddenStates, context;
        private final Map<Transformer2D, List<Attention.KeysAndValues>> cross;

        private ContextProjections(UNet2DConditionModel unet, Tensor encoderHiddenStates, Tensor context,
                                   Map<Transformer2D, List<Attention.KeysAndValues>> cross) {
            this.unet = unet;
            this.encoderHiddenStates = encoderHiddenStates;
            this.context = context;
            this.cross = cross;
        }

        /** The encoder hidden states these were projected from. */
        public Tensor encoderHiddenStates() {
            return encoderHiddenStates;
        }

        /**
         * These projections for a batch whose row i is row {@code rows[i]} of this one: a batch whose
         * requests repeat a context projects each distinct one once (the kernels are batch invariant,
         * so every row keeps the bits it gets alone).
         */
        public ContextProjections rows(int[] rows) {
            Map<Transformer2D, List<Attention.KeysAndValues>> picked = new java.util.IdentityHashMap<>();
            for (var e : cross.entrySet())
                picked.put(e.getKey(), e.getValue().stream().map(kv -> new Attention.KeysAndValues(pick(kv.k(), rows), pick(kv.v(), rows))).toList());
            Tensor states = pick(encoderHiddenStates, rows);
            return new ContextProjections(unet, states, context == encoderHiddenStates ? states : pick(context, rows), picked); // no encoder_hid_proj: one tensor
        }

        private Tensor pick(Tensor t, int[] rows) {
            List<Tensor> parts = new ArrayList<>(rows.length);
            for (int r : rows) parts.add(unet.be.sliceBatch(t, r, 1));
            return unet.be.concatBatch(parts);
        }
    }

    /** encoder_hid_proj and every attn2's keys and values of {@code encoderHiddenStates} [B, L, encoder_hid_dim]. */
    public ContextProjections contextProjections(Tensor encoderHiddenStates) {
        Tensor context = encoderHidProj == null ? encoderHiddenStates : be.linear(encoderHiddenStates, encoderHidProj);
        Map<Transformer2D, List<Attention.KeysAndValues>> cross = new java.util.IdentityHashMap<>();
        for (Transformer2D t : transformers()) cross.put(t, t.crossKeysAndValues(be, context));
        return new ContextProjections(this, encoderHiddenStates, context, cross);
    }

    /** {@link #forward(Tensor, float[], Tensor, Tensor, Probe, AttentionContext)} with the context already projected. */
    public Tensor forward(Tensor sample, float[] timesteps, ContextProjections projected, Tensor keyMask, Probe probe, AttentionContext where) {
        if (projected.unet != this) throw new IllegalArgumentException("context projections of another UNet");
        return forward(sample, timesteps, projected.encoderHiddenStates, projected, keyMask, probe, where);
    }

    private List<Transformer2D> transformers() {
        List<Transformer2D> all = new ArrayList<>();
        down.forEach(l -> all.addAll(l.attentions));
        all.add(midAttention);
        up.forEach(l -> all.addAll(l.attentions));
        return all;
    }

    private Tensor forward(Tensor sample, float[] timesteps, Tensor encoderHiddenStates, ContextProjections projected, Tensor keyMask,
                           Probe probe, AttentionContext where) {
        int batch = sample.dim(0);
        if (sample.rank() != 4 || sample.dim(3) != config.inChannels())
            throw new IllegalArgumentException("UNet expects [B, H, W, " + config.inChannels() + "], got " + sample);
        int factor = 1 << (config.levels() - 1);
        if (sample.dim(1) % factor != 0 || sample.dim(2) % factor != 0)
            throw new IllegalArgumentException("UNet input " + sample.dim(1) + "x" + sample.dim(2) + " must be a multiple of " + factor);
        if (encoderHiddenStates.dim(0) != batch || (keyMask != null && keyMask.dim(0) != batch))
            throw new IllegalArgumentException("batch mismatch: sample " + sample + ", context " + encoderHiddenStates + ", mask " + keyMask);
        float[] t = timesteps;
        if (t.length == 1 && batch > 1) {
            t = new float[batch];
            java.util.Arrays.fill(t, timesteps[0]);
        }
        if (t.length != batch) throw new IllegalArgumentException(timesteps.length + " timesteps for a batch of " + batch);

        Tensor tProj = be.timestepEmbedding(t, config.blockOutChannels().getFirst(), config.flipSinToCos(), config.freqShift());
        probe.record("time_proj", tProj);
        Tensor emb = be.linear(be.silu(be.linear(tProj, timeLinear1)), timeLinear2);
        probe.record("time_embedding", emb);
        Tensor embSilu = be.silu(emb);
        Tensor context = projected != null ? projected.context
                : encoderHidProj == null ? encoderHiddenStates : be.linear(encoderHiddenStates, encoderHidProj);
        probe.record("encoder_hid_proj", context);

        Tensor h = be.conv2d(sample, convIn, 1, Padding.same(1));
        probe.record("conv_in", h);
        Deque<Tensor> skips = new ArrayDeque<>();
        skips.push(h);
        for (int i = 0; i < down.size(); i++) {
            Level level = down.get(i);
            for (int j = 0; j < level.resnets.size(); j++) {
                h = level.resnets.get(j).forward(be, h, embSilu);
                if (!level.attentions.isEmpty()) h = cross(level.attentions.get(j), h, context, projected, keyMask, where);
                skips.push(h);
            }
            if (level.resample != null) {
                h = be.conv2d(h, level.resample, 2, Padding.same(1));
                skips.push(h);
            }
            probe.record("down_blocks." + i, h);
        }
        h = midResnet0.forward(be, h, embSilu);
        h = cross(midAttention, h, context, projected, keyMask, where);
        h = midResnet1.forward(be, h, embSilu);
        probe.record("mid_block", h);
        for (int i = 0; i < up.size(); i++) {
            Level level = up.get(i);
            for (int j = 0; j < level.resnets.size(); j++) {
                h = level.resnets.get(j).forward(be, be.concatChannels(h, skips.pop()), embSilu);
                if (!level.attentions.isEmpty()) h = cross(level.attentions.get(j), h, context, projected, keyMask, where);
            }
            if (level.resample != null) h = be.conv2d(be.upsampleNearest2x(h), level.resample, 1, Padding.same(1));
            probe.record("up_blocks." + i, h);
        }
        h = normOut.apply(be, h, false);
        probe.record("conv_norm_out", h);
        h = be.conv2d(be.silu(h), convOut, 1, Padding.same(1));
        probe.record("conv_out", h);
        return h;
    }

    private Tensor cross(Transformer2D t, Tensor h, Tensor context, ContextProjections projected, Tensor keyMask, AttentionContext where) {
        return t.forward(be, h, context, keyMask, where, projected == null ? null : projected.cross.get(t));
    }
}
