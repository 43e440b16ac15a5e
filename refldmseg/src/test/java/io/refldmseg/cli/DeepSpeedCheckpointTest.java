package io.refldmseg.cli;

import io.refldmseg.loader.CheckpointFuzzer;
import io.refldmseg.loader.DType;
import io.refldmseg.loader.Models;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.model.SyntheticWeights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A file of the exact form of the paper's trained UNet: DeepSpeed's mp_rank_00_model_states.pt
 * (torch zip, state dict under "module", keys with the wrapper's "module." prefix, bf16, the full
 * SD1.5 key set with Ref LDM-Seg's encoder_hid_proj, scalars beside it). The values are zeros in one
 * shared storage (every tensor a view of it), so the file stays small; `inspect` must read it.
 */
class DeepSpeedCheckpointTest {
    @TempDir
    Path dir;

    @Test
    void inspectReadsADeepSpeedBf16FileOfTheFullSd15KeySet() throws IOException {
        Map<String, long[]> shapes = SyntheticWeights.unetShapes(UNetConfig.stableDiffusion15(4));
        long largest = 0;
        for (long[] s : shapes.values()) largest = Math.max(largest, java.util.Arrays.stream(s).reduce(1, (a, b) -> a * b));
        Path file = dir.resolve("mp_rank_00_model_states.pt");
        Map<String, byte[]> entries = new java.util.LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle(shapes, largest));
        entries.put("archive/data/0", new byte[Math.toIntExact(largest * 2)]);
        Files.write(file, CheckpointFuzzer.zip(entries));
        try (var m = Models.unet(file)) {
            assertEquals(shapes.size(), m.weights().tensors().size(), "every SD1.5 key recognised");
            assertEquals(DType.BF16, m.weights().get("conv_in.weight").dtype());
            assertEquals(UNetConfig.stableDiffusion15(4).blockOutChannels(), m.config().blockOutChannels());
            assertEquals(1024, m.config().encoderHidDim());
            assertTrue(m.weights().parameterCount() > 859_000_000L, "full size: " + m.weights().parameterCount());
        }
        java.io.StringWriter err = new java.io.StringWriter();
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        java.io.PrintStream before = System.out;
        System.setOut(new java.io.PrintStream(stdout, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.run(new java.io.PrintWriter(err, true), "inspect", "--unet", file.toString());
        } finally {
            System.setOut(before);
        }
        assertEquals(0, code, err.toString());
        String out = stdout.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("diffusers UNet") && out.contains("inChannels=4") && out.contains("860,"), out);
    }

    /** {"module": {"module.<key>": bf16 view of storage 0, ...}, "ds_version": "0.12.6", "global_steps": 20000} as torch.save writes it. */
    static byte[] pickle(Map<String, long[]> shapes, long storageNumel) {
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        p.writeBytes(new byte[]{(byte) 0x80, 2, '}'});
        unicode(p, "module");
        p.writeBytes("ccollections\nOrderedDict\n)R".getBytes(StandardCharsets.ISO_8859_1));
        p.write('(');
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            unicode(p, "module." + e.getKey());
            p.writeBytes("ctorch._utils\n_rebuild_tensor_v2\n((".getBytes(StandardCharsets.ISO_8859_1));
            unicode(p, "storage");
            p.writeBytes("ctorch\nBFloat16Storage\n".getBytes(StandardCharsets.ISO_8859_1));
            unicode(p, "0");
            unicode(p, "cpu");
            integer(p, storageNumel);
            p.writeBytes(new byte[]{'t', 'Q'});
            integer(p, 0);
            long[] shape = e.getValue(), stride = new long[shape.length];
            long acc = 1;
            for (int i = shape.length - 1; i >= 0; i--) {
                stride[i] = acc;
                acc *= shape[i];
            }
            p.write('(');
            for (long d : shape) integer(p, d);
            p.write('t');
            p.write('(');
            for (long d : stride) integer(p, d);
            p.write('t');
            p.write(0x89); // requires_grad False
            p.writeBytes("ccollections\nOrderedDict\n)R".getBytes(StandardCharsets.ISO_8859_1));
            p.writeBytes(new byte[]{'t', 'R'});
        }
        p.write('u');
        p.write('s');
        unicode(p, "ds_version");
        unicode(p, "0.12.6");
        p.write('s');
        unicode(p, "global_steps");
        integer(p, 20000);
        p.writeBytes(new byte[]{'s', '.'});
        return p.toByteArray();
    }

    private static void integer(ByteArrayOutputStream p, long v) {
        p.write('J');
        p.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(Math.toIntExact(v)).array());
    }

    private static void unicode(ByteArrayOutputStream p, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        p.write('X');
        p.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
        p.writeBytes(b);
    }
}
