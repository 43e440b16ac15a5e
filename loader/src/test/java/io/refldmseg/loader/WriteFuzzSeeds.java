package io.refldmseg.loader;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Writes the fuzz seeds made from the fixtures into the regression-input folders (run once; the seeds are committed). */
public final class WriteFuzzSeeds {
    public static void main(String[] args) throws IOException {
        Path root = Path.of(args.length > 0 ? args[0] : "loader/src/test/resources/io/refldmseg/loader/CheckpointFuzzTestInputs");
        for (Map.Entry<String, List<byte[]>> e : CheckpointFuzzer.seeds().entrySet()) {
            Path dir = Files.createDirectories(root.resolve(e.getKey()));
            for (int i = 0; i < e.getValue().size(); i++) Files.write(dir.resolve("seed-" + i), e.getValue().get(i));
            System.out.println(dir + ": " + e.getValue().size() + " seeds");
        }
    }
}
