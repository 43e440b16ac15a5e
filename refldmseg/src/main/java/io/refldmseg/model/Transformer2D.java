package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * diffusers Transformer2DModel as SD1.5 uses it: GroupNorm (eps 1e-6), proj_in, transformer
 * blocks (self-attention, cross-attention with the key mask, GEGLU feed-forward, each pre-LN
 * with a residual), proj_out, plus the input. In channels-last layout proj_in/out are plain
 * linears whether the checkpoint stores them as 1x1 convs or as linears.
 */
final class Transformer2D {
    private static final float NORM_EPS = 1e-6f, LN_EPS = 1e-5f;

    private final GroupNorm norm;
    private final LinearWeights projIn, projOut;
    private final List<Block> blocks = new ArrayList<>();

    private record Block(LayerNorm norm1, Attention attn1, LayerNorm norm2, Attention attn2, LayerNorm norm3,
                         LinearWeights ffIn, LinearWeights ffOut) {
    }

    /** {@code channels} of the feature map, {@code contextDim} of the encoder hidden states. */
    Transformer2D(Params p, String prefix, int channels, int contextDim, int groups, int heads) {
        norm = p.groupNorm(prefix + ".norm", channels, groups, NORM_EPS);
        projIn = p.linear(prefix + ".proj_in", Params.ANY, channels);
        int inner = projIn.outFeatures();
        projOut = p.linear(prefix + ".proj_out", channels, inner);
        int n = p.weights.count(prefix + ".transformer_blocks.", ".norm1.weight");
        for (int i = 0; i < n; i++) {
            String b = prefix + ".transformer_blocks." + i;
            LinearWeights ffIn = p.linear(b + ".ff.net.0.proj", Params.ANY, inner);
            if (ffIn.outFeatures() % 2 != 0)
                throw new io.refldmseg.loader.CheckpointException(p.weights.source() + ": '" + b + ".ff.net.0.proj' has "
                        + ffIn.outFeatures() + " outputs, not the even count GEGLU splits in two");
            blocks.add(new Block(p.layerNorm(b + ".norm1", inner, LN_EPS),
                    new Attention(p, b + ".attn1", AttentionContext.Network.UNET, inner, inner, heads, false),
                    p.layerNorm(b + ".norm2", inner, LN_EPS),
                    new Attention(p, b + ".attn2", AttentionContext.Network.UNET, inner, contextDim, heads, true),
                    p.layerNorm(b + ".norm3", inner, LN_EPS), ffIn, p.linear(b + ".ff.net.2", inner, ffIn.outFeatures() / 2)));
        }
    }

    List<Attention> attentions() {
        List<Attention> out = new ArrayList<>();
        for (Block b : blocks) {
            out.add(b.attn1);
            out.add(b.attn2);
        }
        return out;
    }

    /** Each block's attn2 keys and values of {@code context} (the projected encoder hidden states), in block order. */
    List<Attention.KeysAndValues> crossKeysAndValues(Backend be, Tensor context) {
        List<Attention.KeysAndValues> out = new ArrayList<>();
        for (Block b : blocks) out.add(b.attn2.keysAndValues(be, context));
        return out;
    }

    /**
     * x [N, H, W, C]; context [N, L, Cc]; keyMask [N, L] or null; {@code cross}: what
     * {@link #crossKeysAndValues} returned for this context, or null to project it here.
     */
    Tensor forward(Backend be, Tensor x, Tensor context, Tensor keyMask, AttentionContext where, List<Attention.KeysAndValues> cross) {
        int n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
        try (Backend.Scope scope = be.scope()) { // the intermediates are reused once it returns
            Tensor t = be.reshape(norm.apply(be, x, false), n, h * w, c);
            t = be.linear(t, projIn);
            for (int i = 0; i < blocks.size(); i++) {
                Block b = blocks.get(i);
                t = b.attn1.forward(be, b.norm1.apply(be, t), null, null, where, null, t);
                t = b.attn2.forward(be, b.norm2.apply(be, t), context, keyMask, where, cross == null ? null : cross.get(i), t);
                t = be.linearResidual(be.geglu(be.linear(b.norm3.apply(be, t), b.ffIn)), b.ffOut, List.of(), t);
            }
            t = be.linearResidual(t, projOut, List.of(), be.reshape(x, n, h * w, c));
            return scope.keep(be.reshape(t, n, h, w, c));
        }
    }
}
