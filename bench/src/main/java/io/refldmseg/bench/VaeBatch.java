package io.refldmseg.bench;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.config.VaeConfig;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.SyntheticWeights;

import java.util.Random;

/**
 * Whether the full-size VAE gains from a batch at the pipeline's 256 x 256: per image, B single
 * encodes (decodes) against one encode (decode) of B images, the two sides alternating in order
 * round by round in one JVM; the ratio single / batched (> 1: the batch is faster). The first two
 * rounds warm up and are not reported as such.
 *
 * <pre>VaeBatch [B=4] [ROUNDS=5]</pre>
 */
public final class VaeBatch {
    private VaeBatch() {
    }

    public static void main(String[] args) {
        int b = args.length > 0 ? Integer.parseInt(args[0]) : 4, rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        try (CpuBackend be = new CpuBackend()) {
            VaeConfig c = VaeConfig.stableDiffusion();
            AutoencoderKL vae = new AutoencoderKL(c, SyntheticWeights.vae(c, 2), be);
            Random r = new Random(1);
            int lat = Workloads.LATENT;
            Tensor image = be.tensor(Workloads.gaussian(r, 256 * 256 * 3), 1, 256, 256, 3), images = be.tensor(Workloads.gaussian(r, b * 256 * 256 * 3), b, 256, 256, 3);
            Tensor latent = be.tensor(Workloads.gaussian(r, lat * lat * 4), 1, lat, lat, 4), latents = be.tensor(Workloads.gaussian(r, b * lat * lat * 4), b, lat, lat, 4);
            System.out.println(be.name() + ", VAE at 256 x 256, batch " + b);
            double[][] ratio = new double[2][rounds];
            for (int round = -2; round < rounds; round++) {
                double[] single = new double[2], batched = new double[2];
                for (int side = 0; side < 2; side++) {
                    boolean batch = (side + round + 2) % 2 == 1;
                    long t0 = System.nanoTime();
                    if (batch) run(be, () -> vae.encode(images).mean());
                    else for (int i = 0; i < b; i++) run(be, () -> vae.encode(image).mean());
                    long t1 = System.nanoTime();
                    if (batch) run(be, () -> vae.decode(latents));
                    else for (int i = 0; i < b; i++) run(be, () -> vae.decode(latent));
                    long t2 = System.nanoTime();
                    double[] into = batch ? batched : single;
                    into[0] = (t1 - t0) / 1e6 / b;
                    into[1] = (t2 - t1) / 1e6 / b;
                }
                System.out.printf("%sround %d, ms per image: encode single %.0f, batched %.0f (x%.2f); decode single %.0f, batched %.0f (x%.2f)%n",
                        round < 0 ? "warm-up " : "", round < 0 ? round + 3 : round + 1, single[0], batched[0], single[0] / batched[0], single[1], batched[1], single[1] / batched[1]);
                if (round >= 0) for (int k = 0; k < 2; k++) ratio[k][round] = single[k] / batched[k];
            }
            System.out.printf("single / batched per image, median over %d rounds (q1..q3): encode %.2f (%.2f..%.2f), decode %.2f (%.2f..%.2f)%n", rounds,
                    Stats.median(ratio[0]), Stats.quantile(ratio[0], 0.25), Stats.quantile(ratio[0], 0.75),
                    Stats.median(ratio[1]), Stats.quantile(ratio[1], 0.25), Stats.quantile(ratio[1], 0.75));
        }
    }

    /** One forward in its own scope, so its activations go before the next. */
    private static void run(Backend be, Runnable forward) {
        try (Backend.Scope s = be.scope()) {
            forward.run();
        }
    }
}
