package io.refldmseg.pipeline;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The tiny Ref LDM-Seg-f shipped in the repository ({@code models/synth-tiny-f/}): trained on the
 * synthetic shape domain of {@code io.refldmseg.eval.SyntheticScenes}, so that the demo, the tests
 * and a first {@code segment} show a mask that follows the support. It is not the paper's model;
 * its {@code MODEL_CARD.md} says what it was trained on and how well it does.
 */
public final class BundledModel {
    public static final String FOLDER = "models/synth-tiny-f";

    private BundledModel() {
    }

    /** The folder under {@code -Drefldmseg.home}, else the first one found from the working directory upwards. */
    public static Optional<Path> folder() {
        String home = System.getProperty("refldmseg.home");
        if (home != null) {
            Path f = Path.of(home).resolve(FOLDER);
            return Files.isDirectory(f) ? Optional.of(f) : Optional.empty();
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path f = p.resolve(FOLDER);
            if (Files.isDirectory(f)) return Optional.of(f);
        }
        return Optional.empty();
    }

    /** Its three files, or an exception that says where it was looked for. */
    public static RefLdmSeg.Checkpoints checkpoints() {
        Path f = folder().orElseThrow(() -> new IllegalStateException("the bundled model (" + FOLDER + ") was not found under "
                + System.getProperty("refldmseg.home", Path.of("").toAbsolutePath() + " or a folder above it")
                + "; run from the repository, set -Drefldmseg.home, or give --unet/--vae/--clip"));
        return new RefLdmSeg.Checkpoints(f.resolve("unet.safetensors"), f.resolve("vae.safetensors"), f.resolve("clip.safetensors"));
    }
}
