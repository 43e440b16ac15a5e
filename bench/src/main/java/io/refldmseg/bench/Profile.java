package io.refldmseg.bench;

import io.refldmseg.engine.ProfilingBackend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import io.refldmseg.model.AlphaClipVisionTower;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.SyntheticWeights;
import io.refldmseg.model.UNet2DConditionModel;

import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;

/**
 * Where a full-size forward spends its time, per op, on the CPU backend:
 * {@code java ... io.refldmseg.bench.Profile unet_b1|unet_b3|vae_encode|vae_decode|clip [runs [winogradMinPixels]]}.
 */
public final class Profile {
    public static void main(String[] args) {
        String what = args.length > 0 ? args[0] : "unet_b1";
        int runs = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int winograd = args.length > 2 ? Integer.parseInt(args[2]) : CpuBackend.DEFAULT_WINOGRAD_MIN_PIXELS;
        ProfilingBackend be = new ProfilingBackend(new CpuBackend(winograd));
        Random r = new Random(1);
        Supplier<Tensor> forward = switch (what) {
            case "unet_b1", "unet_b3" -> {
                int b = what.equals("unet_b1") ? 1 : 3;
                UNetConfig c = UNetConfig.stableDiffusion15(b == 1 ? 4 : 8);
                UNet2DConditionModel unet = new UNet2DConditionModel(c, SyntheticWeights.unet(c, 1), be);
                Tensor x = be.tensor(gaussian(r, b * 32 * 32 * c.inChannels()), b, 32, 32, c.inChannels());
                Tensor ctx = be.tensor(gaussian(r, b * 256 * 1024), b, 256, 1024), mask = be.tensor(ones(b * 256), b, 256);
                yield () -> unet.forward(x, new float[]{500}, ctx, mask);
            }
            case "vae_encode", "vae_decode" -> {
                AutoencoderKL vae = new AutoencoderKL(VaeConfig.stableDiffusion(), SyntheticWeights.vae(VaeConfig.stableDiffusion(), 2), be);
                Tensor img = be.tensor(gaussian(r, 256 * 256 * 3), 1, 256, 256, 3), z = be.tensor(gaussian(r, 32 * 32 * 4), 1, 32, 32, 4);
                yield what.equals("vae_encode") ? () -> vae.encode(img).mean() : () -> vae.decode(z);
            }
            case "clip" -> {
                AlphaClipVisionTower t = new AlphaClipVisionTower(ClipConfig.vitL14(), SyntheticWeights.clip(ClipConfig.vitL14(), 3), be);
                Tensor img = be.tensor(gaussian(r, 224 * 224 * 3), 1, 224, 224, 3), a = be.tensor(gaussian(r, 224 * 224), 1, 224, 224, 1);
                yield () -> t.forward(img, a);
            }
            default -> throw new IllegalArgumentException("unknown network " + what);
        };
        forward.get(); // warm-up
        be.reset();
        long t0 = System.nanoTime();
        for (int i = 0; i < runs; i++) forward.get();
        double total = (System.nanoTime() - t0) / 1e6 / runs;
        System.out.printf("%s: %.0f ms per forward (mean of %d after one warm-up) on %s, Winograd from %d pixels%n", what, total, runs,
                be.name(), winograd);
        for (Map.Entry<String, double[]> e : be.report().entrySet())
            System.out.printf("  %-18s %8.1f ms %5.1f%% %6.0f calls%n", e.getKey(), e.getValue()[0] / runs, 100 * e.getValue()[0] / runs / total, e.getValue()[1] / runs);
    }

    private static float[] gaussian(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }

    private static float[] ones(int n) {
        float[] v = new float[n];
        java.util.Arrays.fill(v, 1f);
        return v;
    }
}
