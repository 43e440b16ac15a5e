package io.refldmseg.loader;

/** The loader's fuzz targets in the form Jazzer's standalone driver runs (scripts/fuzz): one class per target. */
public final class FuzzTargets {
    private FuzzTargets() {
    }

    public static final class SafetensorsHeader {
        public static void fuzzerTestOneInput(byte[] input) {
            CheckpointFuzzer.safetensorsHeader(input);
        }
    }

    public static final class TorchPickle {
        public static void fuzzerTestOneInput(byte[] input) {
            CheckpointFuzzer.torchPickle(input);
        }
    }

    public static final class Config {
        public static void fuzzerTestOneInput(byte[] input) {
            CheckpointFuzzer.config(input);
        }
    }

    public static final class WholeFile {
        public static void fuzzerTestOneInput(byte[] input) {
            CheckpointFuzzer.wholeFile(input);
        }
    }
}
