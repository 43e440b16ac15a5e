package io.refldmseg.bench;

import ai.onnxruntime.OrtEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

class OrtSideBySideTest {
    @Test
    void dynamicDimensionsTakeTheBenchmarkShapes() {
        assertArrayEquals(new long[]{3, 4, 32, 32}, OrtSideBySide.concreteShape("sample", new long[]{-1, 4, -1, -1},
                new String[]{"batch", "", "height", "width"}, 3));
        assertArrayEquals(new long[]{1, 256, 1024}, OrtSideBySide.concreteShape("context", new long[]{-1, -1, -1}, null, 1));
        assertArrayEquals(new long[]{2, 256}, OrtSideBySide.concreteShape("mask", new long[]{-1, -1}, new String[]{"batch", "sequence"}, 2));
        assertArrayEquals(new long[]{1}, OrtSideBySide.concreteShape("timestep", new long[]{1}, null, 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OrtSideBySide.concreteShape("x", new long[]{1, 2, 3, 4, -1}, null, 1));
        assertTrue(e.getMessage().contains("dynamic dimension 4"), e.getMessage());
    }

    /**
     * ORT itself runs a tiny hand-encoded export whose inputs look like a UNet's (sample, int64
     * timestep, context), alternating with "ours", here a forward that sleeps 20 ms: every round
     * runs both, and the ratio ORT / ours is far below 1.
     */
    @Test
    void alternatesAnExportWithUNetLikeInputsAndOurs(@TempDir Path dir) throws Exception {
        Path onnx = dir.resolve("unet.onnx");
        Files.write(onnx, tinyUNetLikeModel());
        int[] oursCalls = {0};
        Workloads.Workload sleeper = new Workloads.Workload("sleeper", 0.5, () -> {
            oursCalls[0]++;
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            return null;
        });
        try (OrtSideBySide.OrtWork ort = OrtSideBySide.OrtWork.open(OrtEnvironment.getEnvironment(), onnx, 3, 1)) {
            OrtSideBySide.Row row = OrtSideBySide.alternate("unet_b3", 5, Duration.ZERO, ort, sleeper, 1.0);
            assertEquals(3 + 5, oursCalls[0], "3 warm-up forwards and one per round");
            assertTrue(ort.startSeconds() > 0 && row.ortMs() > 0, row::toString);
            assertTrue(row.oursMs() >= 20, row::toString);
            assertTrue(row.ratioQ1() <= row.ratio() && row.ratio() <= row.ratioQ3(), row::toString);
            assertTrue(row.ratioQ3() < 0.5, row::toString);
        }
    }

    @Test
    void quantilesInterpolateBetweenOrderStatistics() {
        double[] v = {4, 1, 3, 2};
        assertEquals(2.5, Stats.median(v), 1e-12);
        assertEquals(1.75, Stats.quantile(v, 0.25), 1e-12);
        assertEquals(3.25, Stats.quantile(v, 0.75), 1e-12);
        assertEquals(7, Stats.median(new double[]{7}), 1e-12);
        assertArrayEquals(new double[]{4, 1, 3, 2}, v, "the input keeps its order");
    }

    // ---- a minimal ONNX ModelProto: out = Identity(sample); timestep and context are declared inputs ----

    private static byte[] tinyUNetLikeModel() {
        byte[] node = concat(string(1, "sample"), string(2, "out"), string(4, "Identity"));
        byte[] graph = concat(field(1, node), string(2, "g"),
                field(11, valueInfo("sample", 1, "batch", 4, "height", "width")),
                field(11, valueInfo("timestep", 7, 1)),
                field(11, valueInfo("encoder_hidden_states", 1, "batch", "sequence", 1024)),
                field(12, valueInfo("out", 1, "batch", 4, "height", "width")));
        byte[] opset = concat(string(1, ""), varint(2, 17));
        return concat(varint(1, 8), field(8, opset), field(7, graph));
    }

    /** A ValueInfoProto of a tensor with element type {@code elemType} (1 float, 7 int64); dims are sizes or names. */
    private static byte[] valueInfo(String name, int elemType, Object... dims) {
        ByteArrayOutputStream shape = new ByteArrayOutputStream();
        for (Object d : dims) shape.writeBytes(field(1, d instanceof String s ? string(2, s) : varint(1, (Integer) d)));
        byte[] tensor = concat(varint(1, elemType), field(2, shape.toByteArray()));
        return concat(string(1, name), field(2, field(1, tensor)));
    }

    private static byte[] varint(int field, long value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        writeVarint(out, (long) field << 3);
        writeVarint(out, value);
        return out.toByteArray();
    }

    private static byte[] string(int field, String s) {
        return field(field, s.getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] field(int field, byte[] payload) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        writeVarint(out, ((long) field << 3) | 2);
        writeVarint(out, payload.length);
        out.writeBytes(payload);
        return out.toByteArray();
    }

    private static void writeVarint(ByteArrayOutputStream out, long v) {
        while ((v & ~0x7FL) != 0) {
            out.write((int) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        out.write((int) v);
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }
}
