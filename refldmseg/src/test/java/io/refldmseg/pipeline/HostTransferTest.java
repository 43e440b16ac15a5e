package io.refldmseg.pipeline;

import io.refldmseg.engine.ProfilingBackend;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.eval.SyntheticScenes;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Host transfers per request, counted on a profiling backend: no op inside a -n denoising step
 * crosses to the host (more steps, the same transfers), a -f request's UNet and VAE stages none,
 * and the prompt cache leaves a request with its query upload and its result download.
 */
class HostTransferTest {
    private static long[] transfers(ProfilingBackend be) {
        Map<String, double[]> r = be.report();
        return new long[]{(long) r.getOrDefault("tensor", new double[2])[1], (long) r.getOrDefault("toHost", new double[2])[1]};
    }

    private static long[] request(RefLdmSeg seg, ProfilingBackend be, RefLdmSeg.Prompt prompt, Options o) {
        be.reset();
        seg.segment(SyntheticScenes.scene(11, 0).image(), prompt, o);
        return transfers(be);
    }

    @Test
    void denoisingStepsDoNotCrossToTheHost() {
        ProfilingBackend be = new ProfilingBackend(new CpuBackend());
        try (RefLdmSeg seg = RefLdmSeg.load(PipelineFixtures.tinyN(), be, s -> { }).closingBackend()) {
            SyntheticScenes.Scene s = SyntheticScenes.scene(12, 0);
            RefLdmSeg.Prompt prompt = seg.prompt(List.of(new Support(s.image(), new LabelMap(256, 256, s.mask(0)))), -1);
            for (Options.SchedulerKind kind : Options.SchedulerKind.values()) {
                long[] two = request(seg, be, prompt, Options.defaults().withScheduler(kind).withSteps(2));
                long[] five = request(seg, be, prompt, Options.defaults().withScheduler(kind).withSteps(5));
                assertArrayEquals(two, five, kind + ": uploads/downloads of a 2-step and a 5-step request (per step: none)");
                // uploads: the query, the zero image latent of the unconditioned row, the initial noise, the step noises (DDPM);
                // downloads: the result
                assertEquals(kind == Options.SchedulerKind.DDPM ? 4 : 3, two[0], kind + ": uploads");
                assertEquals(1, two[1], kind + ": downloads");
            }
        }
    }

    @Test
    void aCachedPromptFRequestUploadsTheQueryAndDownloadsTheResult() {
        ProfilingBackend be = new ProfilingBackend(new CpuBackend());
        try (RefLdmSeg seg = RefLdmSeg.load(PipelineFixtures.tinyF(), be, s -> { }).closingBackend()) {
            SyntheticScenes.Scene s = SyntheticScenes.scene(12, 0);
            RefLdmSeg.Prompt prompt = seg.prompt(List.of(new Support(s.image(), new LabelMap(256, 256, s.mask(0)))), -1);
            assertArrayEquals(new long[]{1, 1}, request(seg, be, prompt, Options.defaults()), "uploads, downloads of a -f request");
        }
    }
}
