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
 * fp16 safetensors, diffusers / Alpha-CLIP key names) into a folder, to time and measure the CLI
 * end to end without downloading real weights: {@code WriteSyntheticCheckpoints DIR [f|n]}.
 */
public final class WriteSyntheticCheckpoints {
    public static void main(String[] args) throws IOException {
        Path dir = Files.createDirectories(Path.of(args.length > 0 ? args[0] : "build/synthetic"));
        int in = args.length > 1 && args[1].equals("n") ? 8 : 4;
        write(dir.resolve("unet.safetensors"), SyntheticWeights.unet(UNetConfig.stableDiffusion15(in), 1));
        write(dir.resolve("vae.safetensors"), SyntheticWeights.vae(VaeConfig.stableDiffusion(), 2));
        write(dir.resolve("clip.safetensors"), SyntheticWeights.clip(ClipConfig.vitL14(), 3));
    }

    private static void write(Path file, ModelWeights w) throws IOException {
        Map<String, SafeTensors.WriteEntry> entries = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : w.tensors().entrySet())
            entries.put(e.getKey(), new SafeTensors.WriteEntry(e.getValue().dtype(), e.getValue().shape(),
                    e.getValue().contiguousBytes().toArray(ValueLayout.JAVA_BYTE)));
        SafeTensors.write(file, entries, Map.of("note", "random weights, " + w.layout()));
        System.out.printf("%s: %d tensors, %.2f GB%n", file, entries.size(), Files.size(file) / 1e9);
    }
}
