package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.CheckpointException;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.config.ClipConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Alpha-CLIP's vision transformer as Ref LDM-Seg uses it (select_feature_alpha): patch embedding
 * of the image plus patch embedding of the alpha channel, class token, positional embedding,
 * ln_pre, pre-LN residual blocks (multi-head attention; c_fc, QuickGELU, c_proj). Returns all
 * tokens of the last block: no ln_post, no projection.
 */
public final class AlphaClipVisionTower {
    private static final float EPS = 1e-5f;
    private static final AttentionContext CLIP_CALL = AttentionContext.outside(AttentionContext.Network.CLIP);

    private final Backend be;
    private final ClipConfig config;
    private final ConvWeights conv1, conv1Alpha;
    private final float[] classEmbedding, positionalEmbedding;
    private final LayerNorm lnPre;
    private final List<Block> blocks = new ArrayList<>();

    private record Block(LayerNorm ln1, Attention attn, LayerNorm ln2, LinearWeights fc, LinearWeights proj) {
    }

    public AlphaClipVisionTower(ClipConfig config, ModelWeights weights, Backend backend) {
        this.be = backend;
        this.config = config;
        Params p = new Params(weights, backend);
        int w = config.width();
        if (w % config.heads() != 0)
            throw new CheckpointException(weights.source() + ": width " + w + " does not split into " + config.heads() + " heads");
        int patch = config.patchSize();
        conv1 = p.conv("conv1", w, 3, patch, patch);
        conv1Alpha = p.conv("conv1_alpha", w, 1, patch, patch);
        classEmbedding = weights.get("class_embedding", w).toFloats();
        int tokens = config.gridSize() * config.gridSize() + 1;
        positionalEmbedding = weights.get("positional_embedding", tokens, w).toFloats();
        lnPre = p.layerNorm("ln_pre", w, EPS);
        for (int i = 0; i < config.layers(); i++) {
            String b = "transformer.resblocks." + i;
            var qkv = p.linearSplit(b + ".attn.in_proj.weight", b + ".attn.in_proj.bias", 3, w, w);
            LinearWeights fc = p.linear(b + ".mlp.c_fc", Params.ANY, w);
            Attention attn = new Attention(b + ".attn", AttentionContext.Network.CLIP, qkv.get(0), qkv.get(1), qkv.get(2),
                    p.linear(b + ".attn.out_proj", w, w), config.heads());
            blocks.add(new Block(p.layerNorm(b + ".ln_1", w, EPS), attn, p.layerNorm(b + ".ln_2", w, EPS), fc,
                    p.linear(b + ".mlp.c_proj", w, fc.outFeatures())));
        }
    }

    /** transformer.resblocks.{i}.attn, one per block. */
    public List<Attention> attentionLayers() {
        return blocks.stream().map(Block::attn).toList();
    }

    public ClipConfig config() {
        return config;
    }

    public Tensor forward(Tensor image, Tensor alpha) {
        return forward(image, alpha, Probe.NONE);
    }

    /**
     * @param image [B, R, R, 3] in [-1, 1] (R = input resolution)
     * @param alpha [B, R, R, 1], (mask - 0.5) / 0.26
     * @return all tokens [B, 1 + grid^2, width] (token 0 is the class token)
     */
    public Tensor forward(Tensor image, Tensor alpha, Probe probe) {
        int r = config.inputResolution(), b = image.dim(0), w = config.width();
        if (image.rank() != 4 || image.dim(1) != r || image.dim(2) != r || image.dim(3) != 3)
            throw new IllegalArgumentException("vision tower expects [B, " + r + ", " + r + ", 3], got " + image);
        if (alpha.rank() != 4 || alpha.dim(0) != b || alpha.dim(1) != r || alpha.dim(2) != r || alpha.dim(3) != 1)
            throw new IllegalArgumentException("alpha must be [" + b + ", " + r + ", " + r + ", 1], got " + alpha);
        Tensor patches = be.conv2d(image, conv1, config.patchSize(), Padding.NONE);
        Tensor alphaPatches = be.conv2d(alpha, conv1Alpha, config.patchSize(), Padding.NONE);
        probe.record("conv1", patches);
        probe.record("conv1_alpha", alphaPatches);
        int grid = patches.dim(1);
        Tensor x = be.reshape(be.add(patches, alphaPatches), b, grid * grid, w);
        float[] cls = new float[b * w], pos = new float[b * positionalEmbedding.length];
        for (int i = 0; i < b; i++) {
            System.arraycopy(classEmbedding, 0, cls, i * w, w);
            System.arraycopy(positionalEmbedding, 0, pos, i * positionalEmbedding.length, positionalEmbedding.length);
        }
        x = be.concatDim1(List.of(be.tensor(cls, b, 1, w), x));
        x = be.add(x, be.tensor(pos, b, grid * grid + 1, w));
        x = lnPre.apply(be, x);
        probe.record("ln_pre", x);
        for (int i = 0; i < blocks.size(); i++) {
            Block blk = blocks.get(i);
            try (Backend.Scope scope = be.scope()) { // the block's intermediates are reused by the next block
                Tensor h = blk.ln1.apply(be, x);
                x = blk.attn.forward(be, h, null, null, CLIP_CALL, null, x);
                x = scope.keep(be.linearResidual(be.quickGelu(be.linear(blk.ln2.apply(be, x), blk.fc)), blk.proj, List.of(), x));
            }
            probe.record("block" + i, x);
        }
        return x;
    }
}
