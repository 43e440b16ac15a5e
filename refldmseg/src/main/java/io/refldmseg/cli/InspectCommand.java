package io.refldmseg.cli;

import io.refldmseg.loader.Models;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show the layout, architecture and size of checkpoints without running anything.")
final class InspectCommand implements Callable<Integer> {
    @Option(names = "--unet", paramLabel = "PATH")
    Path unet;

    @Option(names = "--vae", paramLabel = "PATH")
    Path vae;

    @Option(names = "--clip", paramLabel = "PATH")
    Path clip;

    @Override
    public Integer call() {
        if (unet == null && vae == null && clip == null) throw new Main.UserError("give --unet, --vae and/or --clip");
        if (unet != null) print("UNet", unet, Models.unet(unet));
        if (vae != null) print("VAE", vae, Models.vae(vae));
        if (clip != null) print("vision tower", clip, Models.clip(clip));
        return 0;
    }

    private static void print(String what, Path p, Models.Loaded<?> m) {
        try (m) {
            System.out.printf("%s %s%n  layout: %s%n  parameters: %,d (%d tensors)%n  config (%s): %s%n", what, p, m.weights().layout(),
                    m.weights().parameterCount(), m.weights().tensors().size(), m.configSource(), m.config());
        }
    }
}
