package io.refldmseg.engine;

import io.refldmseg.engine.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ProfilingBackendTest {
    @Test
    void countsTwoFlopsPerMultiplyAddOfTheGemmClassOps() {
        try (CpuBackend cpu = new CpuBackend(1)) {
            ProfilingBackend be = new ProfilingBackend(cpu);
            Tensor x = be.tensor(new float[2 * 3 * 5], 2, 3, 5);
            be.linear(x, be.linearWeights(new float[7 * 5], 7, 5, null));
            assertEquals(2L * 6 * 7 * 5, be.flops(), "linear: 6 rows x 7 outputs x 5 inputs");

            be.reset();
            Tensor image = be.tensor(new float[6 * 8 * 2], 1, 6, 8, 2);
            be.conv2d(image, be.convWeights(new float[4 * 2 * 9], 4, 2, 3, 3, null), 2, Padding.same(1));
            assertEquals(2L * (3 * 4) * 4 * 2 * 9, be.flops(), "3x3 stride-2 conv: 3 x 4 output pixels x 4 out x 2 in x 9 taps");

            be.reset();
            Tensor q = be.tensor(new float[4 * 8], 1, 4, 8), kv = be.tensor(new float[5 * 8], 1, 5, 8);
            be.attention(q, kv, kv, 2, null);
            assertEquals(2L * 2 * 4 * 5 * 8, be.flops(), "attention: q k^T and p v, 4 queries x 5 keys x 8 channels each");
            assertEquals(2L * 2 * 4 * 5 * 8 / 1e9, be.report().get("attention")[2], 1e-18);
            be.add(q, q);
            assertEquals(0.0, be.report().get("add")[2], "element-wise ops are not counted");
        }
    }
}
