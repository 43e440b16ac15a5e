package io.refldmseg.loader;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Jazzer fuzz targets over the loader and config inference ({@link CheckpointFuzzer}). Without
 * JAZZER_FUZZ each runs as a regression test over its inputs in
 * src/test/resources/io/refldmseg/loader/CheckpointFuzzTestInputs/&lt;target&gt;/ (the seeds
 * from the fixtures, and every crasher found so far); scripts/fuzz fuzzes one for real.
 */
class CheckpointFuzzTest {
    @FuzzTest(maxDuration = "60s")
    void safetensorsHeader(byte[] input) {
        CheckpointFuzzer.safetensorsHeader(input);
    }

    @FuzzTest(maxDuration = "60s")
    void torchPickle(byte[] input) {
        CheckpointFuzzer.torchPickle(input);
    }

    @FuzzTest(maxDuration = "60s")
    void config(byte[] input) {
        CheckpointFuzzer.config(input);
    }

    @FuzzTest(maxDuration = "60s")
    void wholeFile(byte[] input) {
        CheckpointFuzzer.wholeFile(input);
    }
}
