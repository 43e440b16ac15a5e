package io.refldmseg.engine.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The driver binding end to end on a GPU: context, memory, copies, the fatbin and one kernel.
 * Skipped, with the reason, where there is no GPU (CI and the 2-core dev machines).
 */
class CudaDriverTest {
    @Test
    void fatbinIsBuiltWhereNvccExists() {
        Assumptions.assumeTrue(System.getenv("PATH") != null && java.util.Arrays.stream(System.getenv("PATH").split(":"))
                .anyMatch(p -> new java.io.File(p, "nvcc").canExecute()), "nvcc not on PATH: the build has no fatbin");
        assertNotNull(Cuda.fatbin(), "kernels module packaged " + Cuda.FATBIN_RESOURCE);
    }

    @Test
    void addKernelRunsOnTheGpu() {
        Cuda.Probe probe = Cuda.probe();
        Assumptions.assumeTrue(probe.device().isPresent(), () -> "GPU test skipped: " + probe.reason());
        Cuda.Device dev = probe.device().get();
        CudaDriver cu = dev.driver();
        cu.usePrimaryContext(dev.device());
        int n = 1000;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment x = a.allocate(4L * n), y = a.allocate(4L * n), out = a.allocate(4L * n);
            for (int i = 0; i < n; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
                y.setAtIndex(ValueLayout.JAVA_FLOAT, i, 2f * i);
            }
            long dx = cu.malloc(4L * n), dy = cu.malloc(4L * n), dz = cu.malloc(4L * n);
            cu.copyToDevice(dx, x);
            cu.copyToDevice(dy, y);
            MemorySegment fn = cu.function(cu.loadModule(dev.fatbin()), "add_f32");
            cu.launch(fn, (n + 255) / 256, 256, 0, dx, dy, dz, (long) n);
            cu.synchronize();
            cu.copyToHost(out, dz);
            for (int i = 0; i < n; i++) assertEquals(3f * i, out.getAtIndex(ValueLayout.JAVA_FLOAT, i), "element " + i);
            cu.free(dx);
            cu.free(dy);
            cu.free(dz);
            System.out.println("[gpu] add_f32 ran on " + dev.name());
        }
    }

    @Test
    void errorsNameTheCallAndTheCudaError() {
        Cuda.Probe probe = Cuda.probe();
        Assumptions.assumeTrue(probe.device().isPresent(), () -> "GPU test skipped: " + probe.reason());
        CudaDriver cu = probe.device().get().driver();
        cu.usePrimaryContext(probe.device().get().device());
        CudaException e = assertThrows(CudaException.class, () -> cu.malloc(1L << 50));
        assertTrue(e.getMessage().startsWith("cuMemAlloc_v2") && e.getMessage().contains("CUDA_ERROR"), e.getMessage());
    }
}
