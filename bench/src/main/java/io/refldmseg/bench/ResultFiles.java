package io.refldmseg.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;

/** Where the benchmarks' JSON goes: bench/results/&lt;name&gt;-&lt;UTC time&gt;.json. */
final class ResultFiles {
    private ResultFiles() {
    }

    /** Writes {@code json} and says where. */
    static Path write(String name, CharSequence json) throws IOException {
        Path out = Path.of("bench/results", name + "-" + Instant.now().toString().replace(":", "") + ".json");
        Files.createDirectories(out.getParent());
        Files.writeString(out, json);
        System.out.println("written " + out);
        return out;
    }
}
