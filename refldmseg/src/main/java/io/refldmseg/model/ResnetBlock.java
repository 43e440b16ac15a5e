package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.CheckpointException;

/**
 * diffusers ResnetBlock2D: GN-SiLU-conv3x3 (+ time embedding projection), GN-SiLU-conv3x3, plus
 * the input (through a 1x1 conv_shortcut when the width changes). Output scale factor 1.
 */
final class ResnetBlock {
    private final GroupNorm norm1, norm2;
    private final ConvWeights conv1, conv2, shortcut;
    private final LinearWeights timeEmbProj;
    final int outChannels;

    /** {@code in} input channels, {@code out} output channels; {@code tembDim} the time embedding width, or 0 for the VAE. */
    ResnetBlock(Params p, String prefix, int in, int out, int tembDim, int groups, float eps) {
        norm1 = p.groupNorm(prefix + ".norm1", in, groups, eps);
        conv1 = p.conv(prefix + ".conv1", out, in, 3);
        norm2 = p.groupNorm(prefix + ".norm2", out, groups, eps);
        conv2 = p.conv(prefix + ".conv2", out, out, 3);
        outChannels = out;
        if (in != out && !p.has(prefix + ".conv_shortcut.weight"))
            throw new CheckpointException(p.weights.source() + ": '" + prefix + "' maps " + in + " to " + out
                    + " channels but has no conv_shortcut");
        shortcut = p.has(prefix + ".conv_shortcut.weight") ? p.conv(prefix + ".conv_shortcut", out, in, 1) : null;
        timeEmbProj = tembDim > 0 && p.has(prefix + ".time_emb_proj.weight") ? p.linear(prefix + ".time_emb_proj", out, tembDim) : null;
    }

    /** x [N, H, W, C]; tembSilu = silu(time embedding) [N, T], or null for the VAE. */
    Tensor forward(Backend be, Tensor x, Tensor tembSilu) {
        try (Backend.Scope scope = be.scope()) { // the block's intermediates are reused once it returns
            Tensor h = normConv(be, norm1, x, conv1);
            if (timeEmbProj != null) h = be.addPerSample(h, be.linear(tembSilu, timeEmbProj));
            h = normConv(be, norm2, h, conv2);
            Tensor skip = shortcut == null ? x : be.conv2d(x, shortcut, 1, Padding.NONE);
            return scope.keep(be.add(skip, h));
        }
    }

    /** conv(silu(norm(x))) in a scope of its own: the normalised copy is dead once the conv has read it (at 512 x 512 x 128 one is 134 MB). */
    private static Tensor normConv(Backend be, GroupNorm norm, Tensor x, ConvWeights conv) {
        try (Backend.Scope scope = be.scope()) {
            return scope.keep(be.conv2d(norm.apply(be, x, true), conv, 1, Padding.same(1)));
        }
    }
}
