package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.TestBackend;
import io.refldmseg.scheduler.DdimScheduler;
import io.refldmseg.scheduler.DdpmScheduler;
import io.refldmseg.scheduler.NoiseSchedule;
import io.refldmseg.scheduler.Scheduler;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class GuidanceTest {
    @Test
    void threeBranchGuidanceByHand() {
        // rows (text, image, uncond) of two elements: e = u + g_t (t - i) + g_q (i - u)
        float[] raw = {3f, 1f, 2f, 1f, 0.5f, 0f};
        float[] e = Guidance.combine(raw, 2, 7f, 1.5f);
        assertEquals(0.5f + 7f * (3f - 2f) + 1.5f * (2f - 0.5f), e[0], 1e-6f);
        assertEquals(0f + 7f * (1f - 1f) + 1.5f * (1f - 0f), e[1], 1e-6f);
        assertTrue(Guidance.applies(1f, 1f));
        assertFalse(Guidance.applies(0.9f, 1.5f), "a scale below 1 turns guidance off (one unguided row)");
    }

    /** The pipeline's backend guidance and scheduler updates round exactly as the host functions do. */
    @Test
    void backendGuidanceAndSchedulerUpdatesEqualTheHostFunctions() {
        Backend be = TestBackend.create();
        Random r = new Random(3);
        int n = 2 * 4 * 4 * 4;
        float[] raw = new float[3 * n], x = new float[n], noise = new float[n];
        for (int i = 0; i < raw.length; i++) raw[i] = (float) r.nextGaussian();
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
            noise[i] = (float) r.nextGaussian();
        }
        float[] hostEps = Guidance.combine(raw, n, 7f, 1.5f);
        assertArrayEquals(hostEps, be.toHost(Guidance.combine(be, be.tensor(raw, 3, 2 * 4, 4, 4), 7f, 1.5f)), 0f);
        for (Scheduler s : new Scheduler[]{new DdpmScheduler(NoiseSchedule.stableDiffusion(), 20), new DdimScheduler(NoiseSchedule.stableDiffusion(), 20)})
            for (int step = 0; step < 20; step++) {
                float[] host = s.step(hostEps, step, x, noise).prevSample();
                Scheduler.Update u = s.update(step);
                var dev = be.axpby(u.sample(), be.tensor(x, 1, 8, 4, 4), u.eps(), be.tensor(hostEps, 1, 8, 4, 4));
                if (u.noise() != 0f) dev = be.axpby(1f, dev, u.noise(), be.tensor(noise, 1, 8, 4, 4));
                assertArrayEquals(host, be.toHost(dev), 0f, s.getClass().getSimpleName() + " step " + step);
            }
    }
}
