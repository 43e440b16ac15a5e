package io.refldmseg.model;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.refldmseg.engine.Backend;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.CheckpointFuzzer;
import io.refldmseg.loader.Models;
import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;

/**
 * The loader's header and config fuzz inputs carried on into the network constructors: whatever
 * loads must build a UNet / VAE / tower or be refused with a CheckpointException (the shape checks
 * of every tensor a network takes). Without JAZZER_FUZZ: a regression test over the committed seeds.
 */
class NetworkFuzzTest {
    static final Backend be = new CpuBackend();

    static void build(Models.Loaded<?> m) {
        switch (m.config()) {
            case UNetConfig c -> new UNet2DConditionModel(c, m.weights(), be);
            case VaeConfig c -> new AutoencoderKL(c, m.weights(), be);
            case ClipConfig c -> new AlphaClipVisionTower(c, m.weights(), be);
            default -> throw new IllegalStateException("unknown config " + m.config());
        }
    }

    @FuzzTest(maxDuration = "60s")
    void networksFromHeader(byte[] input) {
        CheckpointFuzzer.safetensorsHeader(input, NetworkFuzzTest::build);
    }

    @FuzzTest(maxDuration = "60s")
    void networksFromConfig(byte[] input) {
        CheckpointFuzzer.config(input, NetworkFuzzTest::build);
    }
}
