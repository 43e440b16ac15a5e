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
 * 256 x 256, batch 1 unless stated (unet_b3_nstep: a -n step, see {@link Workloads}), fp32 on the CPU backend; {@code f_e2e} is a whole Ref LDM-Seg-f
 * request (tower, VAE encode, UNet, VAE decode, pre/post-processing), {@code n_e2e} a whole -n
 * request (20 DDPM steps of a batch-3 guided UNet, plus the null prompt). {@code network} picks one so
 * a run builds only what it times.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class NetworkBench {
    @Param({"unet_b1", "unet_b3", "unet_b3_nstep", "vae_encode", "vae_decode", "clip", "f_e2e", "n_e2e"})
    public String network;

    private final Backend be = new CpuBackend();
    private Workloads.Workload workload;
    private RefLdmSeg segmenter;
    private RgbImage query;
    private List<Support> supports;

    @Setup
    public void build() {
        Random r = new Random(1);
        long t0 = System.nanoTime();
        switch (network) {
            case "unet_b1", "unet_b3", "unet_b3_nstep", "vae_encode", "vae_decode", "clip" -> workload = Workloads.build(network, be);
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
        return workload != null ? workload.forward().get()
                : be.tensor(segmenter.segment(query, supports, Options.defaults()).logits(), 3, 256, 256);
    }
}
