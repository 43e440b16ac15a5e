package io.refldmseg.loader;

import io.refldmseg.loader.config.ClipConfig;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.loader.config.VaeConfig;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Every supported layout of the same weights loads to identical tensors under internal names. */
class LayoutEquivalenceTest {

    static void assertSameTensors(ModelWeights expected, ModelWeights actual) {
        assertEquals(expected.tensors().keySet(), actual.tensors().keySet(), "key sets differ");
        for (Map.Entry<String, TensorData> e : expected.tensors().entrySet()) {
            TensorData a = actual.get(e.getKey());
            assertArrayEquals(e.getValue().shape(), a.shape(), e.getKey());
            assertArrayEquals(e.getValue().toFloats(), a.toFloats(), 0f, e.getKey());
        }
    }

    @Test
    void originalSdEqualsDiffusersUnetAndVae() {
        Path sd = Fixtures.file("sd_original.safetensors");
        try (var ref = Models.unet(Fixtures.file("unet_diffusers.safetensors")); var got = Models.unet(sd)) {
            assertEquals("original Stable Diffusion UNet", got.weights().layout());
            assertSameTensors(ref.weights(), got.weights());
            assertEquals(ref.config(), got.config(), "unet_config metadata of the single file");
        }
        try (var ref = Models.vae(Fixtures.file("vae_diffusers.safetensors")); var got = Models.vae(sd)) {
            assertEquals("original Stable Diffusion VAE", got.weights().layout());
            assertSameTensors(ref.weights(), got.weights());
            assertEquals(ref.config(), got.config());
        }
    }

    /** Widening gives a mapped tensor's pages back; reading it (and its neighbours on shared pages) again still gives its values. */
    @Test
    void aTensorReadsTheSameAfterItsPagesWereGivenBack() {
        for (String name : new String[]{"sd_original_fp16.safetensors", "unet8_mp_rank_00_model_states.pt"}) {
            try (TensorFile tf = TensorFile.open(Fixtures.file(name))) {
                Map<String, float[]> first = new java.util.HashMap<>();
                for (var e : tf.tensors().entrySet()) first.put(e.getKey(), e.getValue().toFloats());
                for (var e : tf.tensors().entrySet()) assertArrayEquals(first.get(e.getKey()), e.getValue().toFloats(), 0f, name + " " + e.getKey());
            }
        }
    }

    @Test
    void fp16SingleFileEqualsFp32AfterWidening() {
        try (var ref = Models.unet(Fixtures.file("sd_original.safetensors"));
             var half = Models.unet(Fixtures.file("sd_original_fp16.safetensors"))) {
            assertEquals(DType.F16, half.weights().get("conv_in.weight").dtype(), "fp16 stays narrow until widened");
            assertSameTensors(ref.weights(), half.weights());
        }
        try (var ref = Models.vae(Fixtures.file("sd_original.safetensors"));
             var half = Models.vae(Fixtures.file("sd_original_fp16.safetensors"))) {
            assertSameTensors(ref.weights(), half.weights());
        }
    }

    @Test
    void deepSpeedBf16CheckpointEqualsUnet8() {
        try (var ref = Models.unet(Fixtures.file("unet8_diffusers.safetensors"));
             var ds = Models.unet(Fixtures.file("unet8_mp_rank_00_model_states.pt"))) {
            assertEquals(DType.BF16, ds.weights().get("conv_in.weight").dtype());
            assertSameTensors(ref.weights(), ds.weights());
            assertEquals(8, ds.config().inChannels());
            try (TensorFile tf = TensorFile.open(Fixtures.file("unet8_mp_rank_00_model_states.pt"))) {
                assertTrue(tf.metadata().containsKey("ds_version"), "DeepSpeed scalars exposed as metadata: " + tf.metadata());
            }
        }
    }

    @Test
    void pthEqualsSafetensorsAndOpenAiLayoutEqualsAlphaClip() {
        try (var ref = Models.clip(Fixtures.file("alphaclip_visual.safetensors"));
             var pth = Models.clip(Fixtures.file("alphaclip_visual.pth"));
             var openai = Models.clip(Fixtures.file("alphaclip_openai_layout.safetensors"))) {
            assertSameTensors(ref.weights(), pth.weights());
            assertSameTensors(ref.weights(), openai.weights());
            assertEquals(new ClipConfig(224, 14, 64, 2, 4), ref.config());
            assertEquals(ref.config(), openai.config());
        }
    }

    @Test
    void inferredConfigsEqualMetadataConfigs() {
        for (String f : new String[]{"unet_diffusers.safetensors", "unet8_diffusers.safetensors"}) {
            try (var m = Models.unet(Fixtures.file(f))) {
                UNetConfig meta = m.config(), inf = Configs.inferUNet(m.weights());
                assertEquals(meta.inChannels(), inf.inChannels(), f);
                assertEquals(meta.outChannels(), inf.outChannels(), f);
                assertEquals(meta.blockOutChannels(), inf.blockOutChannels(), f);
                assertEquals(meta.layersPerBlock(), inf.layersPerBlock(), f);
                assertEquals(meta.downBlockTypes(), inf.downBlockTypes(), f);
                assertEquals(meta.upBlockTypes(), inf.upBlockTypes(), f);
                assertEquals(meta.crossAttentionDim(), inf.crossAttentionDim(), f);
                assertEquals(meta.encoderHidDim(), inf.encoderHidDim(), f);
                assertEquals(meta.useLinearProjection(), inf.useLinearProjection(), f);
            }
        }
        try (var m = Models.vae(Fixtures.file("vae_diffusers.safetensors"))) {
            VaeConfig meta = m.config(), inf = Configs.inferVae(m.weights());
            assertEquals(meta.blockOutChannels(), inf.blockOutChannels());
            assertEquals(meta.layersPerBlock(), inf.layersPerBlock());
            assertEquals(meta.latentChannels(), inf.latentChannels());
            assertEquals(meta.inChannels(), inf.inChannels());
            assertEquals(meta.outChannels(), inf.outChannels());
        }
        try (var m = Models.clip(Fixtures.file("alphaclip_visual.pth"))) {
            assertEquals("inferred from weight shapes", m.configSource());
            ClipConfig inf = m.config();
            assertEquals(224, inf.inputResolution());
            assertEquals(14, inf.patchSize());
            assertEquals(64, inf.width());
            assertEquals(2, inf.layers());
        }
    }

    @Test
    void diffusersFolderLayoutWithConfigJson() throws Exception {
        Path root = Files.createTempDirectory("pipeline");
        try {
            Files.createDirectories(root.resolve("unet"));
            Files.copy(Fixtures.file("unet_diffusers.safetensors"), root.resolve("unet/diffusion_pytorch_model.safetensors"));
            try (TensorFile tf = TensorFile.open(Fixtures.file("unet_diffusers.safetensors"))) {
                // a config.json that differs from the metadata proves which one is read
                String cfg = tf.metadata().get("config").replace("\"attention_head_dim\": 8", "\"attention_head_dim\": 4");
                Files.writeString(root.resolve("unet/config.json"), cfg);
            }
            try (var m = Models.unet(root)) {
                assertEquals(4, m.config().attentionHeads().get(0));
                assertEquals(8, m.config().normNumGroups());
            }
        } finally {
            try (var s = Files.walk(root)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }
}
