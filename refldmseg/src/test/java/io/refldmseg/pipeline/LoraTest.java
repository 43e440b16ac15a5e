package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Golden;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.Models;
import io.refldmseg.loader.SafeTensors;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;
import io.refldmseg.loader.config.UNetConfig;
import io.refldmseg.model.UNet2DConditionModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** A LoRA file made here gives the same UNet output as its deltas merged into the base weights, in every format. */
class LoraTest {
    @TempDir
    Path dir;

    static final String[] TARGETS = {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
            "mid_block.attentions.0.transformer_blocks.0.attn2.to_k",
            "up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_out.0"};
    static final int RANK = 4;
    static final float ALPHA = 2f, STRENGTH = 0.5f;

    @Test
    void unmergedLoraEqualsMergedWeightsInEveryFormat() throws Exception {
        Backend be = new CpuBackend();
        Path base = Fixtures.file("unet_diffusers.safetensors");
        Random r = new Random(11);
        Map<String, float[][]> deltas = new LinkedHashMap<>(); // target -> {down, up}
        Map<String, SafeTensors.WriteEntry> kohya = new LinkedHashMap<>(), peft = new LinkedHashMap<>(), old = new LinkedHashMap<>();
        Map<String, SafeTensors.WriteEntry> merged = new LinkedHashMap<>();
        String config;
        try (TensorFile tf = TensorFile.open(base)) {
            config = tf.metadata().get("config");
            for (String t : TARGETS) {
                TensorData w = tf.tensor(t + ".weight");
                int out = w.dim(0), in = w.dim(1);
                float[] down = gaussian(r, RANK * in, 0.3f), up = gaussian(r, out * RANK, 0.3f);
                deltas.put(t, new float[][]{down, up});
                String k = "lora_unet_" + t.replace('.', '_');
                kohya.put(k + ".lora_down.weight", SafeTensors.WriteEntry.f32(down, RANK, in));
                kohya.put(k + ".lora_up.weight", SafeTensors.WriteEntry.f32(up, out, RANK));
                kohya.put(k + ".alpha", SafeTensors.WriteEntry.f32(new float[]{ALPHA}));
                peft.put("base_model.model." + t + ".lora_A.weight", SafeTensors.WriteEntry.f32(down, RANK, in));
                peft.put("base_model.model." + t + ".lora_B.weight", SafeTensors.WriteEntry.f32(up, out, RANK));
                String proc = t.endsWith("to_out.0") ? t.replace(".to_out.0", ".processor.to_out_lora") : t.replaceFirst("\\.(to_[qkv])$", ".processor.$1_lora");
                old.put(proc + ".down.weight", SafeTensors.WriteEntry.f32(down, RANK, in));
                old.put(proc + ".up.weight", SafeTensors.WriteEntry.f32(up, out, RANK));
            }
            for (Map.Entry<String, TensorData> e : tf.tensors().entrySet()) {
                float[] v = e.getValue().toFloats();
                String t = e.getKey().endsWith(".weight") ? e.getKey().substring(0, e.getKey().length() - 7) : null;
                if (t != null && deltas.containsKey(t)) {
                    int out = e.getValue().dim(0), in = e.getValue().dim(1);
                    float[] down = deltas.get(t)[0], up = deltas.get(t)[1];
                    float scale = ALPHA / RANK * STRENGTH;
                    for (int o = 0; o < out; o++)
                        for (int i = 0; i < in; i++) {
                            double acc = 0;
                            for (int k = 0; k < RANK; k++) acc += (double) up[o * RANK + k] * down[k * in + i];
                            v[o * in + i] += (float) (scale * acc);
                        }
                }
                merged.put(e.getKey(), SafeTensors.WriteEntry.f32(v, e.getValue().shape()));
            }
        }
        Path mergedFile = dir.resolve("merged.safetensors"), kohyaFile = dir.resolve("kohya.safetensors"), oldFile = dir.resolve("old.safetensors");
        Path peftDir = Files.createDirectories(dir.resolve("peft")), peftFile = peftDir.resolve("adapter_model.safetensors");
        SafeTensors.write(mergedFile, merged, Map.of("config", config));
        SafeTensors.write(kohyaFile, kohya, Map.of());
        SafeTensors.write(peftFile, peft, Map.of());
        Files.writeString(peftDir.resolve("adapter_config.json"), "{\"r\": 4, \"lora_alpha\": 2.0, \"target_modules\": [\"to_q\", \"to_k\", \"to_v\", \"to_out.0\"]}");
        // the old diffusers processors carry no alpha: scale = strength, so give it alpha/rank x strength directly
        float oldStrength = ALPHA / RANK * STRENGTH;
        SafeTensors.write(oldFile, old, Map.of());

        try (TensorFile io = TensorFile.open(Fixtures.file("unet_io.safetensors"));
             Models.Loaded<UNetConfig> baseW = Models.unet(base); Models.Loaded<UNetConfig> mergedW = Models.unet(mergedFile)) {
            Tensor sample = Golden.image(be, io.tensor("sample")), ehs = Golden.plain(be, io.tensor("encoder_hidden_states")), mask = Golden.plain(be, io.tensor("mask"));
            float[] t = {500, 500};
            UNet2DConditionModel unet = new UNet2DConditionModel(baseW.config(), baseW.weights(), be);
            UNet2DConditionModel ref = new UNet2DConditionModel(mergedW.config(), mergedW.weights(), be);
            float[] expected = be.toHost(ref.forward(sample, t, ehs, mask));
            float[] plainOut = be.toHost(unet.forward(sample, t, ehs, mask));
            Lora lora = new Lora(unet, be);
            double tol = Golden.tolerance("unet_io/t500_mask");
            for (Lora.Adapter a : List.of(lora.load(kohyaFile, STRENGTH), lora.load(peftFile, STRENGTH), lora.load(oldFile, oldStrength))) {
                assertEquals(TARGETS.length, a.byProjection().size(), a.source());
                lora.apply(List.of(a));
                Golden.assertClose("LoRA " + a.source(), expected, be.toHost(unet.forward(sample, t, ehs, mask)), tol);
            }
            double diff = Golden.assertClose("merged differs from base", plainOut, expected, Double.MAX_VALUE);
            assertTrue(diff > 100 * tol, "the LoRA deltas change the output (" + diff + ")");
            lora.apply(List.of());
            assertArrayEquals(plainOut, be.toHost(unet.forward(sample, t, ehs, mask)), "removing adapters restores the base model exactly");
        }
    }

    static float[] gaussian(Random r, int n, float s) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian() * s;
        return v;
    }
}
