package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.config.UNetConfig;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The same model code runs the real SD1.5 shapes: a full-size UNet forward at 256x256 (latent 32x32). */
class FullSizeTest {
    @Test
    void fullSizeUnetForwardIsFinite() {
        Backend be = new CpuBackend();
        UNetConfig config = UNetConfig.stableDiffusion15(4);
        ModelWeights w = SyntheticWeights.unet(config, 1);
        assertEquals(859_520_964L + 1024L * 768 + 768, w.parameterCount(), "SD1.5 UNet parameters + the 1024->768 adapter");
        long t0 = System.nanoTime();
        UNet2DConditionModel unet = new UNet2DConditionModel(config, w, be);
        long t1 = System.nanoTime();
        Random r = new Random(3);
        float[] x = new float[32 * 32 * 4], ctx = new float[256 * 1024], mask = new float[256];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (int i = 0; i < ctx.length; i++) ctx[i] = (float) r.nextGaussian();
        for (int i = 0; i < mask.length; i++) mask[i] = i % 3 == 0 ? 0 : 1;
        Tensor out = unet.forward(be.tensor(x, 1, 32, 32, 4), new float[]{0}, be.tensor(ctx, 1, 256, 1024), be.tensor(mask, 1, 256));
        long t2 = System.nanoTime();
        assertArrayEquals(new int[]{1, 32, 32, 4}, out.shape());
        float[] y = be.toHost(out);
        double sumSq = 0;
        for (float v : y) {
            assertTrue(Float.isFinite(v), "finite output");
            sumSq += v * v;
        }
        assertTrue(sumSq > 0, "non-zero output");
        System.out.printf("full-size UNet: build+pack %.1f s, forward 256x256 b1 %.2f s on %s%n",
                (t1 - t0) / 1e9, (t2 - t1) / 1e9, be.name());
    }
}
