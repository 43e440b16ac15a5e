package io.refldmseg.engine;

import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.engine.cuda.Cuda;
import io.refldmseg.engine.cuda.CudaBackend;

/**
 * The backend the model and pipeline tests run on: the CPU unless {@code
 * -Drefldmseg.test.backend=cuda} (scripts/gpu-run sets it for its second pass), so the same
 * fixture tests check the CUDA backend on a GPU machine. Asking for CUDA where there is none is
 * an error, not a silent fall-back.
 */
public final class TestBackend {
    private TestBackend() {
    }

    public static Backend create() {
        String which = System.getProperty("refldmseg.test.backend", "cpu");
        return switch (which) {
            case "cpu" -> new CpuBackend();
            case "cuda" -> {
                Cuda.Probe probe = Cuda.probe();
                yield new CudaBackend(probe.device().orElseThrow(() -> new IllegalStateException(
                        "-Drefldmseg.test.backend=cuda but " + probe.reason())), 8L << 30);
            }
            default -> throw new IllegalArgumentException("refldmseg.test.backend must be cpu or cuda, not " + which);
        };
    }
}
