package io.refldmseg.scheduler;

import io.refldmseg.engine.Golden;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.TensorFile;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** DDPM and DDIM against schedulers.safetensors, step by step. */
class SchedulersTest {
    final NoiseSchedule schedule = NoiseSchedule.stableDiffusion();

    @Test
    void scheduleMatchesDiffusers() {
        try (TensorFile f = TensorFile.open(Fixtures.file("schedulers.safetensors"))) {
            assertArrayEquals(f.tensor("ddpm.betas").toFloats(), schedule.betas(), 0f, "betas bit for bit");
            assertArrayEquals(f.tensor("ddpm.alphas_cumprod").toFloats(), schedule.alphasCumprod(), 0f, "alphas_cumprod bit for bit");
            for (int n : new int[]{20, 50}) {
                long[] t = f.tensor("ddim.timesteps_" + n).toLongs();
                int[] ours = schedule.timesteps(n);
                for (int i = 0; i < n; i++) assertEquals(t[i], ours[i]);
            }
            assertEquals(f.tensor("ddim.final_alpha_cumprod").toFloats()[0], new DdimScheduler(schedule, 20).finalAlphaCumprod());
        }
    }

    @Test
    void stepsMatch() {
        try (TensorFile f = TensorFile.open(Fixtures.file("schedulers.safetensors"))) {
            for (String kind : new String[]{"ddpm", "ddim"}) {
                for (int n : new int[]{20, 50}) {
                    Scheduler s = kind.equals("ddpm") ? new DdpmScheduler(schedule, n) : new DdimScheduler(schedule, n);
                    for (int i : new int[]{0, n / 2, n - 1}) {
                        String p = kind + n + ".step" + i + ".";
                        assertEquals(f.tensor(p + "t").toLongs()[0], s.timesteps()[i], p + "t");
                        float[] noise = kind.equals("ddpm") ? f.tensor(p + "variance_noise").toFloats() : null;
                        Scheduler.Step st = s.step(f.tensor(p + "model_output").toFloats(), i, f.tensor(p + "sample").toFloats(), noise);
                        float[] refPrev = f.tensor(p + "prev_sample").toFloats(), refX0 = f.tensor(p + "pred_original_sample").toFloats();
                        // fp32 arithmetic in the same order as diffusers: a few ulps of the largest value
                        Golden.assertClose(p + "prev_sample", refPrev, st.prevSample(), 4 * Math.ulp(maxAbs(refPrev)));
                        Golden.assertClose(p + "pred_original_sample", refX0, st.predOriginal(), 4 * Math.ulp(maxAbs(refX0)));
                    }
                }
            }
        }
    }

    @Test
    void invalidStepCounts() {
        assertThrows(IllegalArgumentException.class, () -> new DdimScheduler(schedule, 0));
        assertThrows(IllegalArgumentException.class, () -> new DdpmScheduler(schedule, -3));
    }

    static float maxAbs(float[] a) {
        float m = 0;
        for (float v : a) m = Math.max(m, Math.abs(v));
        return m;
    }
}
