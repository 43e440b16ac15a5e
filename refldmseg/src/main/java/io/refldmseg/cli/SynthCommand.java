package io.refldmseg.cli;

import io.refldmseg.eval.SyntheticScenes;
import io.refldmseg.pipeline.ImageFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write the synthetic in-context domain (5 shape kinds on noisy gradients) in the FSS-1000 layout: DIR/<kind>/<scene>.jpg + <scene>.png.")
final class SynthCommand implements Callable<Integer> {
    @Option(names = "--out", required = true, paramLabel = "DIR", description = "folder to write")
    Path out;

    @Option(names = "--scenes", defaultValue = "100", description = "scenes to draw (default: ${DEFAULT-VALUE}); each appears under every kind it shows")
    int scenes;

    @Option(names = "--seed", defaultValue = "0", description = "seed (default: ${DEFAULT-VALUE}; held-out sets use another)")
    long seed;

    @Override
    public Integer call() throws IOException {
        if (scenes < 1 || scenes > 1_000_000) throw new Main.UserError("--scenes must be in 1..1000000, got " + scenes);
        OutputPaths.checkDir("--out", out);
        Progress.Bar bar = new Progress.Bar("scenes", scenes);
        int[] perKind = new int[SyntheticScenes.KINDS.size()];
        for (int i = 0; i < scenes; i++) {
            SyntheticScenes.Scene s = SyntheticScenes.scene(seed, i);
            for (int k = 0; k < perKind.length; k++) {
                if (!s.contains(k)) continue;
                Path dir = Files.createDirectories(out.resolve(SyntheticScenes.KINDS.get(k)));
                ImageFiles.writeRgb(dir.resolve(i + ".jpg"), s.image());
                ImageFiles.writeMask(dir.resolve(i + ".png"), SyntheticScenes.SIZE, SyntheticScenes.SIZE, s.mask(k));
                perKind[k]++;
            }
            bar.update(i + 1, 0);
        }
        for (int k = 0; k < perKind.length; k++) System.out.println(out.resolve(SyntheticScenes.KINDS.get(k)) + ": " + perKind[k] + " scenes");
        return 0;
    }
}
