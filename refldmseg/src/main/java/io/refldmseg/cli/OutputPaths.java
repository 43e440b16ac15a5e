package io.refldmseg.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** Checks, before any model loads, that a run will be able to write where it was told to. */
final class OutputPaths {
    private OutputPaths() {
    }

    /** {@code file} (given by {@code option}) can be created or overwritten: not a folder, and its nearest existing parent is a writable folder. */
    static void checkFile(String option, Path file) {
        if (file == null) return;
        Path abs = file.toAbsolutePath();
        if (Files.isDirectory(abs)) throw new Main.UserError(option + " " + file + ": is a folder, expected a file name");
        if (Files.exists(abs) && !Files.isWritable(abs)) throw new Main.UserError(option + " " + file + ": exists and is not writable");
        checkFolder(option, abs.getParent(), file);
    }

    /** {@code dir} (given by {@code option}) is a writable folder or can be created as one. */
    static void checkDir(String option, Path dir) {
        Path abs = dir.toAbsolutePath();
        if (Files.exists(abs) && !Files.isDirectory(abs)) throw new Main.UserError(option + " " + dir + ": exists and is not a folder");
        checkFolder(option, abs, dir);
    }

    private static void checkFolder(String option, Path folder, Path given) {
        Path p = folder;
        while (p != null && !Files.exists(p)) p = p.getParent();
        if (p == null || !Files.isDirectory(p))
            throw new Main.UserError(option + " " + given + ": " + p + " is not a folder");
        if (!Files.isWritable(p)) throw new Main.UserError(option + " " + given + ": folder " + p + " is not writable");
    }
}
