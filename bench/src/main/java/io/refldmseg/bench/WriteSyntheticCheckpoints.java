package io.refldmseg.bench;

import io.refldmseg.loader.ModelWeights;
import io.refldmseg.loader.SafeTensors;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import io.refldmseg.model.SyntheticWeights;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes full-size random-weight checkpoints (SD1.5 UNet for -f or -n, SD VAE, Alpha-CLIP ViT-L/14,
 * safetensors, diffusers / Alpha-CLIP key names) into a folder, to time and measure the CLI end to
 * end without downloading real weights: {@code WriteSyntheticCheckpoints DIR [f|n] [fp16|bf16|fp32]}.
 * fp16 (the default) stores the random values as drawn; fp32 widens them; bf16 rounds them to
 * bf16 and sets each tensor's first element to a value fp16 cannot hold (as a trained bf16 model's
 * smallest weights are), so the file is bf16 in fact and not just in name.
 */
public final class WriteSyntheticCheckpoints {
    public static void main(String[] args) throws IOException {
        Path dir = Files.createDirectories(Path.of(args.length > 0 ? args[0] : "build/synthetic"));
        int in = args.length > 1 && args[1].equals("n") ? 8 : 4;
        String dtype = args.length > 2 ? args[2] : "fp16";
        if (!java.util.List.of("fp16", "bf16", "fp32").contains(dtype)) throw new IllegalArgumentException("dtype must be fp16, bf16 or fp32: " + dtype);
        write(dir.resolve("unet.safetensors"), SyntheticWeights.unet(UNetConfig.stableDiffusion15(in), 1), dtype);
        write(dir.resolve("vae.safetensors"), SyntheticWeights.vae(VaeConfig.stableDiffusion(), 2), dtype);
        write(dir.resolve("clip.safetensors"), SyntheticWeights.clip(ClipConfig.vitL14(), 3), dtype);
    }

    private static void write(Path file, ModelWeights w, String dtype) throws IOException {
        Map<String, SafeTensors.WriteEntry> entries = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : w.tensors().entrySet()) {
            TensorData t = e.getValue();
            entries.put(e.getKey(), switch (dtype) {
                case "fp16" -> new SafeTensors.WriteEntry(t.dtype(), t.shape(), t.contiguousBytes().toArray(ValueLayout.JAVA_BYTE));
                case "fp32" -> SafeTensors.WriteEntry.f32(t.toFloats(), t.shape());
                default -> bf16(t);
            });
        }
        SafeTensors.write(file, entries, Map.of("note", "random weights (" + dtype + "), " + w.layout()));
        System.out.printf("%s: %d tensors, %.2f GB%n", file, entries.size(), Files.size(file) / 1e9);
    }

    private static SafeTensors.WriteEntry bf16(TensorData t) {
        float[] v = t.toFloats();
        if (v.length > 1 && t.name().endsWith(".weight") && t.rank() >= 2) v[0] = 1e-20f; // below fp16's range
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(v.length * 2).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            int bits = Float.floatToRawIntBits(x);
            b.putShort((short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16)); // round to nearest even
        }
        return new SafeTensors.WriteEntry(io.refldmseg.loader.DType.BF16, t.shape(), b.array());
    }
}
