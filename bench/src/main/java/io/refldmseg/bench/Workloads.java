package io.refldmseg.bench;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import io.refldmseg.model.AlphaClipVisionTower;
import io.refldmseg.model.AttentionContext;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.Probe;
import io.refldmseg.model.SyntheticWeights;
import io.refldmseg.model.UNet2DConditionModel;

import java.util.Random;
import java.util.function.Supplier;

/**
 * The full-size networks the benchmarks time, with random weights at the real SD1.5 / ViT-L shapes:
 * a UNet step at 256 x 256 (32 x 32 latent, 256 context tokens of 1024, every fourth key masked; unet_b3_nstep is a
 * -n step, whose context the pipeline projected once per request),
 * the VAE encoder and decoder at 256 x 256, the Alpha-CLIP tower at 224 x 224.
 */
final class Workloads {
    /** Latent side, context tokens and width of the Ref LDM-Seg UNet input at 256 x 256. */
    static final int LATENT = 32, TOKENS = 256, CONTEXT_WIDTH = 1024;

    private Workloads() {
    }

    /** One network forward ready to run: {@code forward.get()} runs it once. */
    record Workload(String name, double buildSeconds, Supplier<Tensor> forward) {
        /** One forward, timed, in ms. */
        double millis() {
            long t0 = System.nanoTime();
            forward.get();
            return (System.nanoTime() - t0) / 1e6;
        }
    }

    static Workload build(String name, Backend be) {
        Random r = new Random(1);
        long t0 = System.nanoTime();
        Supplier<Tensor> forward = switch (name) {
            case "unet_b1", "unet_b3", "unet_b3_nstep" -> {
                int b = name.equals("unet_b1") ? 1 : 3;
                UNetConfig c = UNetConfig.stableDiffusion15(b == 1 ? 4 : 8);
                UNet2DConditionModel unet = new UNet2DConditionModel(c, SyntheticWeights.unet(c, 1), be);
                Tensor sample = be.tensor(gaussian(r, b * LATENT * LATENT * c.inChannels()), b, LATENT, LATENT, c.inChannels());
                Tensor context = be.tensor(gaussian(r, b * TOKENS * CONTEXT_WIDTH), b, TOKENS, CONTEXT_WIDTH);
                Tensor mask = be.tensor(keyMask(b * TOKENS), b, TOKENS);
                if (name.equals("unet_b3_nstep")) { // a -n step: the request's context was projected once, before its first step
                    UNet2DConditionModel.ContextProjections projected = unet.contextProjections(context);
                    AttentionContext where = new AttentionContext(AttentionContext.Network.UNET, 500, 0,
                            java.util.Collections.nCopies(b, AttentionContext.Branch.TEXT), 1, TOKENS, null);
                    yield () -> unet.forward(sample, new float[]{500}, projected, mask, Probe.NONE, where);
                }
                yield () -> unet.forward(sample, new float[]{500}, context, mask);
            }
            case "vae_encode", "vae_decode" -> {
                VaeConfig c = VaeConfig.stableDiffusion();
                AutoencoderKL vae = new AutoencoderKL(c, SyntheticWeights.vae(c, 2), be);
                if (name.equals("vae_encode")) {
                    Tensor image = be.tensor(gaussian(r, 256 * 256 * 3), 1, 256, 256, 3);
                    yield () -> vae.encode(image).mean();
                }
                Tensor latent = be.tensor(gaussian(r, LATENT * LATENT * 4), 1, LATENT, LATENT, 4);
                yield () -> vae.decode(latent);
            }
            case "clip" -> {
                ClipConfig c = ClipConfig.vitL14();
                AlphaClipVisionTower tower = new AlphaClipVisionTower(c, SyntheticWeights.clip(c, 3), be);
                Tensor image = be.tensor(gaussian(r, 224 * 224 * 3), 1, 224, 224, 3);
                Tensor alpha = be.tensor(gaussian(r, 224 * 224), 1, 224, 224, 1);
                yield () -> tower.forward(image, alpha);
            }
            default -> throw new IllegalArgumentException("unknown network '" + name + "' (unet_b1, unet_b3, unet_b3_nstep, vae_encode, vae_decode, clip)");
        };
        return new Workload(name, (System.nanoTime() - t0) / 1e9, forward);
    }

    /** The key mask every benchmark uses: every fourth context token masked out. */
    static float[] keyMask(int n) {
        float[] m = new float[n];
        for (int i = 0; i < n; i++) m[i] = i % 4 == 0 ? 0 : 1;
        return m;
    }

    static float[] gaussian(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }
}
