package io.refldmseg.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Segment the bundled sample with the bundled tiny models and write a mask and an overlay.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--out-dir", defaultValue = "out", paramLabel = "DIR", description = "where to write (default: ${DEFAULT-VALUE})")
    Path outDir;

    @Override
    public Integer call() {
        Path home = Path.of(System.getProperty("refldmseg.home", "."));
        Path models = home.resolve("testdata/fixtures"), samples = home.resolve("samples");
        if (!Files.isDirectory(models) || !Files.isDirectory(samples))
            throw new Main.UserError("bundled models/samples not found under " + home.toAbsolutePath() + " (run from the repository, or set -Drefldmseg.home)");
        Progress.line("demo: the bundled tiny models have RANDOM weights: the mask shows the pipeline works, not what it segments.");
        Progress.line("      For real use pass --unet/--vae (or --checkpoint) and --clip to 'refldmseg segment' (see README).");
        return Main.run("segment",
                "--unet", models.resolve("unet_diffusers.safetensors").toString(),
                "--vae", models.resolve("vae_diffusers.safetensors").toString(),
                "--clip", models.resolve("alphaclip_visual.safetensors").toString(),
                "--query", samples.resolve("query.png").toString(),
                "--support", samples.resolve("support.png").toString(),
                "--support-mask", samples.resolve("support_mask.png").toString(),
                "--out", outDir.resolve("demo_mask.png").toString(),
                "--overlay", outDir.resolve("demo_overlay.png").toString());
    }
}
