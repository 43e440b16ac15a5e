package io.refldmseg.bench;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import io.refldmseg.model.AlphaClipVisionTower;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.SyntheticWeights;
import io.refldmseg.model.UNet2DConditionModel;
import io.refldmseg.pipeline.LabelMap;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Support;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Full-size networks (SD1.5 UNet and VAE, Alpha-CLIP ViT-L/14) with random fp16 weights at
 * 256 x 256, batch 1 unless stated, fp32 on the CPU backend; {@code f_e2e} is a whole Ref LDM-Seg-f
 * request (tower, VAE encode, UNet, VAE decode, pre/post-processing), {@code n_e2e} a whole -n
 * request (20 DDPM steps of a batch-3 guided UNet, plus the null prompt). {@code network} picks one so
 * a run builds only what it times.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class NetworkBench {
    @Param({"unet_b1", "unet_b3", "vae_encode", "vae_decode", "clip", "f_e2e", "n_e2e"})
    public String network;

    private final Backend be = new CpuBackend();
    private UNet2DConditionModel unet;
    private AutoencoderKL vae;
    private AlphaClipVisionTower tower;
    private Tensor sample, context, mask, image, latent, clipImage, clipAlpha;
    private RefLdmSeg segmenter;
    private RgbImage query;
    private List<Support> supports;

    @Setup
    public void build() {
        Random r = new Random(1);
        long t0 = System.nanoTime();
        switch (network) {
            case "unet_b1", "unet_b3" -> {
                int b = network.equals("unet_b1") ? 1 : 3;
                UNetConfig c = UNetConfig.stableDiffusion15(b == 1 ? 4 : 8);
                unet = new UNet2DConditionModel(c, SyntheticWeights.unet(c, 1), be);
                sample = be.tensor(gaussian(r, b * 32 * 32 * c.inChannels()), b, 32, 32, c.inChannels());
                context = be.tensor(gaussian(r, b * 256 * 1024), b, 256, 1024);
                float[] m = new float[b * 256];
                for (int i = 0; i < m.length; i++) m[i] = i % 4 == 0 ? 0 : 1;
                mask = be.tensor(m, b, 256);
            }
            case "vae_encode", "vae_decode" -> {
                VaeConfig c = VaeConfig.stableDiffusion();
                vae = new AutoencoderKL(c, SyntheticWeights.vae(c, 2), be);
                image = be.tensor(gaussian(r, 256 * 256 * 3), 1, 256, 256, 3);
                latent = be.tensor(gaussian(r, 32 * 32 * 4), 1, 32, 32, 4);
            }
            case "clip" -> {
                ClipConfig c = ClipConfig.vitL14();
                tower = new AlphaClipVisionTower(c, SyntheticWeights.clip(c, 3), be);
                clipImage = be.tensor(gaussian(r, 224 * 224 * 3), 1, 224, 224, 3);
                clipAlpha = be.tensor(gaussian(r, 224 * 224), 1, 224, 224, 1);
            }
            case "f_e2e", "n_e2e" -> {
                UNetConfig uc = UNetConfig.stableDiffusion15(network.equals("f_e2e") ? 4 : 8);
                VaeConfig vc = VaeConfig.stableDiffusion();
                ClipConfig cc = ClipConfig.vitL14();
                segmenter = new RefLdmSeg(new UNet2DConditionModel(uc, SyntheticWeights.unet(uc, 1), be),
                        new AutoencoderKL(vc, SyntheticWeights.vae(vc, 2), be), new AlphaClipVisionTower(cc, SyntheticWeights.clip(cc, 3), be), be);
                byte[] q = new byte[256 * 256 * 3], s = new byte[256 * 256 * 3], m = new byte[256 * 256];
                r.nextBytes(q);
                r.nextBytes(s);
                for (int i = 0; i < m.length; i++) m[i] = (byte) ((i / 256 - 128) * (i / 256 - 128) + (i % 256 - 128) * (i % 256 - 128) < 60 * 60 ? 255 : 0);
                query = new RgbImage(256, 256, q);
                supports = List.of(new Support(new RgbImage(256, 256, s), new LabelMap(256, 256, m)));
            }
            default -> throw new IllegalArgumentException(network);
        }
        System.out.printf("%n[bench] %s: built and packed in %.1f s on %s%n", network, (System.nanoTime() - t0) / 1e9, be.name());
    }

    @Benchmark
    public Tensor forward() {
        return switch (network) {
            case "unet_b1", "unet_b3" -> unet.forward(sample, new float[]{500}, context, mask);
            case "vae_encode" -> vae.encode(image).mean();
            case "vae_decode" -> vae.decode(latent);
            case "f_e2e", "n_e2e" -> be.tensor(segmenter.segment(query, supports, Options.defaults()).logits(), 3, 256, 256);
            default -> tower.forward(clipImage, clipAlpha);
        };
    }

    private static float[] gaussian(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }
}
