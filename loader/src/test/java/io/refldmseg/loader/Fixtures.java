package io.refldmseg.loader;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the golden fixtures copied into the repository (testdata/fixtures). */
public final class Fixtures {
    private Fixtures() {
    }

    public static Path dir() {
        String prop = System.getProperty("refldmseg.fixtures");
        if (prop != null && Files.isDirectory(Path.of(prop))) return Path.of(prop);
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path f = p.resolve("testdata/fixtures");
            if (Files.isDirectory(f)) return f;
        }
        throw new IllegalStateException("testdata/fixtures not found");
    }

    public static Path file(String name) {
        return dir().resolve(name);
    }
}
