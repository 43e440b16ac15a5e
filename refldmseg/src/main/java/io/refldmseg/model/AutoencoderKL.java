package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.LinearWeights;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.config.VaeConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * diffusers AutoencoderKL: the encoder maps an image [N, H, W, 3] in [-1, 1] to the posterior
 * mean and log-variance [N, H/f, W/f, latent]; the decoder maps a latent back to an image.
 * Scaling by 0.18215 is the caller's business. GroupNorm eps is 1e-6 everywhere.
 */
public final class AutoencoderKL {
    private static final float EPS = 1e-6f;
    private static final AttentionContext VAE_CALL = AttentionContext.outside(AttentionContext.Network.VAE);

    private final Backend be;
    private final VaeConfig config;
    private final ConvWeights encConvIn, encConvOut, quantConv, postQuantConv, decConvIn, decConvOut;
    private final GroupNorm encNormOut, decNormOut;
    private final List<Level> encoder = new ArrayList<>(), decoder = new ArrayList<>();
    private final MidBlock encMid, decMid;

    private record Level(List<ResnetBlock> resnets, ConvWeights resample) {
    }

    /** Posterior of the encoder: mean and log-variance (before clamping), channels-last. */
    public record Posterior(Tensor mean, Tensor logvar) {
    }

    /** UNetMidBlock2D of the VAE: resnet, single-head spatial self-attention, resnet. */
    private static final class MidBlock {
        final ResnetBlock resnet0, resnet1;
        final GroupNorm norm;
        final Attention attention;

        MidBlock(Params p, String prefix, int channels, int groups) {
            resnet0 = new ResnetBlock(p, prefix + ".resnets.0", channels, channels, 0, groups, EPS);
            norm = p.groupNorm(prefix + ".attentions.0.group_norm", channels, groups, EPS);
            attention = new Attention(p, prefix + ".attentions.0", AttentionContext.Network.VAE, channels, channels, 1, false);
            resnet1 = new ResnetBlock(p, prefix + ".resnets.1", channels, channels, 0, groups, EPS);
        }

        Tensor forward(Backend be, Tensor x) {
            Tensor h = resnet0.forward(be, x, null);
            int n = h.dim(0), hh = h.dim(1), w = h.dim(2), c = h.dim(3);
            Tensor t = be.reshape(norm.apply(be, h, false), n, hh * w, c);
            h = be.reshape(attention.forward(be, t, null, null, VAE_CALL, null, be.reshape(h, n, hh * w, c)), n, hh, w, c);
            return resnet1.forward(be, h, null);
        }
    }

    public AutoencoderKL(VaeConfig config, ModelWeights weights, Backend backend) {
        this.be = backend;
        this.config = config;
        Params p = new Params(weights, backend);
        int groups = config.normNumGroups(), levels = config.blockOutChannels().size();
        List<Integer> width = config.blockOutChannels();
        int lat = config.latentChannels(), ch = width.getFirst();
        encConvIn = p.conv("encoder.conv_in", ch, config.inChannels(), 3);
        for (int i = 0; i < levels; i++) {
            List<ResnetBlock> r = new ArrayList<>();
            for (int j = 0; j < config.layersPerBlock(); j++) {
                r.add(new ResnetBlock(p, "encoder.down_blocks." + i + ".resnets." + j, ch, width.get(i), 0, groups, EPS));
                ch = width.get(i);
            }
            encoder.add(new Level(r, i < levels - 1 ? p.conv("encoder.down_blocks." + i + ".downsamplers.0.conv", ch, ch, 3) : null));
        }
        encMid = new MidBlock(p, "encoder.mid_block", ch, groups);
        encNormOut = p.groupNorm("encoder.conv_norm_out", ch, groups, EPS);
        encConvOut = p.conv("encoder.conv_out", 2 * lat, ch, 3);
        quantConv = p.conv("quant_conv", 2 * lat, 2 * lat, 1);
        postQuantConv = p.conv("post_quant_conv", lat, lat, 1);
        ch = width.getLast();
        decConvIn = p.conv("decoder.conv_in", ch, lat, 3);
        decMid = new MidBlock(p, "decoder.mid_block", ch, groups);
        for (int i = 0; i < levels; i++) {
            List<ResnetBlock> r = new ArrayList<>();
            int out = width.get(levels - 1 - i);
            for (int j = 0; j <= config.layersPerBlock(); j++) {
                r.add(new ResnetBlock(p, "decoder.up_blocks." + i + ".resnets." + j, ch, out, 0, groups, EPS));
                ch = out;
            }
            decoder.add(new Level(r, i < levels - 1 ? p.conv("decoder.up_blocks." + i + ".upsamplers.0.conv", ch, ch, 3) : null));
        }
        decNormOut = p.groupNorm("decoder.conv_norm_out", ch, groups, EPS);
        decConvOut = p.conv("decoder.conv_out", config.outChannels(), ch, 3);
    }

    /** The two attention layers: encoder.mid_block.attentions.0 and decoder.mid_block.attentions.0. */
    public List<Attention> attentionLayers() {
        return List.of(encMid.attention, decMid.attention);
    }

    public VaeConfig config() {
        return config;
    }

    /** Spatial downscale factor between image and latent (8 for SD). */
    public int downscale() {
        return 1 << (config.blockOutChannels().size() - 1);
    }

    public Posterior encode(Tensor image) {
        return encode(image, Probe.NONE);
    }

    public Posterior encode(Tensor image, Probe probe) {
        if (image.rank() != 4 || image.dim(3) != config.inChannels())
            throw new IllegalArgumentException("VAE encoder expects [N, H, W, " + config.inChannels() + "], got " + image);
        if (image.dim(1) % downscale() != 0 || image.dim(2) % downscale() != 0)
            throw new IllegalArgumentException("VAE input " + image.dim(1) + "x" + image.dim(2) + " must be a multiple of " + downscale());
        Tensor h = be.conv2d(image, encConvIn, 1, Padding.same(1));
        probe.record("encoder.conv_in", h);
        for (int i = 0; i < encoder.size(); i++) {
            h = encoderLevel(encoder.get(i), h);
            probe.record("encoder.down_blocks." + i, h);
        }
        h = encMid.forward(be, h);
        probe.record("encoder.mid_block", h);
        h = be.conv2d(encNormOut.apply(be, h, true), encConvOut, 1, Padding.same(1));
        probe.record("encoder.conv_out", h);
        Tensor moments = be.conv2d(h, quantConv, 1, Padding.NONE);
        probe.record("quant_conv", moments);
        int lat = config.latentChannels();
        return new Posterior(be.sliceChannels(moments, 0, lat), be.sliceChannels(moments, lat, lat));
    }

    /** One down block; its intermediates (all but its output) are reused once it returns, not held until the encoder ends. */
    private Tensor encoderLevel(Level level, Tensor h) {
        try (Backend.Scope scope = be.scope()) {
            for (ResnetBlock r : level.resnets) h = r.forward(be, h, null);
            if (level.resample != null) h = be.conv2d(h, level.resample, 2, Padding.BOTTOM_RIGHT_1);
            return scope.keep(h);
        }
    }

    /** One up block, scoped as {@link #encoderLevel}: at 512 x 512 a level's intermediates are hundreds of MB. */
    private Tensor decoderLevel(Level level, Tensor h) {
        try (Backend.Scope scope = be.scope()) {
            for (ResnetBlock r : level.resnets) h = r.forward(be, h, null);
            if (level.resample != null) h = be.conv2d(be.upsampleNearest2x(h), level.resample, 1, Padding.same(1));
            return scope.keep(h);
        }
    }

    public Tensor decode(Tensor latent) {
        return decode(latent, Probe.NONE);
    }

    public Tensor decode(Tensor latent, Probe probe) {
        if (latent.rank() != 4 || latent.dim(3) != config.latentChannels())
            throw new IllegalArgumentException("VAE decoder expects [N, h, w, " + config.latentChannels() + "], got " + latent);
        Tensor h = be.conv2d(latent, postQuantConv, 1, Padding.NONE);
        probe.record("post_quant_conv", h);
        h = be.conv2d(h, decConvIn, 1, Padding.same(1));
        probe.record("decoder.conv_in", h);
        h = decMid.forward(be, h);
        probe.record("decoder.mid_block", h);
        for (int i = 0; i < decoder.size(); i++) {
            h = decoderLevel(decoder.get(i), h);
            probe.record("decoder.up_blocks." + i, h);
        }
        h = decNormOut.apply(be, h, false);
        probe.record("decoder.conv_norm_out", h);
        h = be.conv2d(be.silu(h), decConvOut, 1, Padding.same(1));
        probe.record("decoder.conv_out", h);
        return h;
    }
}
