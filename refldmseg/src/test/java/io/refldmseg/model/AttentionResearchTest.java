package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.Models;
import io.refldmseg.loader.config.UNetConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The research seam: named layers, swappable processors, the shipped mask modes and recorders. */
class AttentionResearchTest {
    static final Backend be = new CpuBackend();
    static Models.Loaded<UNetConfig> weights;
    static UNet2DConditionModel unet;
    static Tensor sample, context, keyMask, onesMask, softMask;

    @BeforeAll
    static void load() {
        weights = Models.unet(Fixtures.file("unet_diffusers.safetensors"));
        unet = new UNet2DConditionModel(weights.config(), weights.weights(), be);
        Random r = new Random(7);
        int lk = 32;
        sample = be.tensor(gaussian(r, 16 * 16 * 4), 1, 16, 16, 4);
        context = be.tensor(gaussian(r, lk * weights.config().encoderHidDim()), 1, lk, weights.config().encoderHidDim());
        float[] m = new float[lk], ones = new float[lk], soft = new float[lk];
        for (int i = 0; i < lk; i++) {
            m[i] = i % 3 == 0 ? 1f : 0f;
            ones[i] = 1f;
            soft[i] = i % 3 == 0 ? 1f : i % 3 == 1 ? 0.5f : 0f;
        }
        keyMask = be.tensor(m, 1, lk);
        onesMask = be.tensor(ones, 1, lk);
        softMask = be.tensor(soft, 1, lk);
    }

    static float[] gaussian(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @AfterEach
    void reset() {
        unet.attentionLayers().forEach(a -> a.setProcessor(AttentionProcessor.FUSED));
    }

    @AfterAll
    static void close() {
        weights.close();
    }

    static AttentionContext where(Tensor soft) {
        return new AttentionContext(AttentionContext.Network.UNET, 0f, 0, List.of(AttentionContext.Branch.TEXT), 1, soft.dim(1), soft);
    }

    float[] run(Tensor mask) {
        return be.toHost(unet.forward(sample, new float[]{0f}, context, mask, Probe.NONE, where(softMask)));
    }

    @Test
    void layersAreNamedAsInTheCheckpoint() {
        List<String> names = unet.attentionLayers().stream().map(Attention::name).toList();
        assertTrue(names.contains("down_blocks.1.attentions.0.transformer_blocks.0.attn2"), names.toString());
        assertTrue(names.contains("mid_block.attentions.0.transformer_blocks.0.attn1"), names.toString());
        assertEquals(32, names.size(), "16 transformers x (attn1, attn2)");
        assertEquals(16, AttentionLayers.select(unet.attentionLayers(), "*attn2").size());
        assertTrue(unet.attentionLayers().stream().filter(Attention::isCrossAttention).allMatch(a -> a.name().endsWith("attn2")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AttentionLayers.select(unet.attentionLayers(), "down_blocks.1.attentions.0.transformer_blocks.0.attn3"));
        assertTrue(e.getMessage().contains("nearest") && e.getMessage().contains("down_blocks.1.attentions.0.transformer_blocks.0.attn2"), e.getMessage());
    }

    /** Records every layer's output (computed by the fused default) in forward order. */
    static final class Spy implements AttentionProcessor {
        final Map<String, float[]> outputs = new LinkedHashMap<>();

        @Override
        public Tensor process(Call call) {
            Tensor y = call.fused();
            outputs.put(call.layer().name(), call.backend().toHost(y));
            return y;
        }
    }

    @Test
    void swappingOneLayerChangesThatLayerOnly() {
        float[] plain = run(keyMask);
        Spy before = new Spy();
        unet.attentionLayers().forEach(a -> a.setProcessor(before));
        assertArrayEquals(plain, run(keyMask), "a processor that calls the fused op gives the default's bits");

        String swapped = "up_blocks.1.attentions.0.transformer_blocks.0.attn2";
        Spy after = new Spy();
        unet.attentionLayers().forEach(a -> a.setProcessor(after));
        List<Attention> set = AttentionLayers.setProcessor(unet.attentionLayers(), swapped,
                call -> { // the ablation: this layer ignores its keys' content (uniform over the kept keys)
                    Tensor zeroQ = call.backend().scale(call.q(), 0f);
                    Tensor y = call.backend().attention(zeroQ, call.k(), call.v(), call.heads(), call.keyMask());
                    after.outputs.put(call.layer().name(), call.backend().toHost(y));
                    return y;
                });
        assertEquals(1, set.size());
        float[] changed = run(keyMask);
        assertFalse(java.util.Arrays.equals(plain, changed), "the swap changes the prediction");
        List<String> order = new ArrayList<>(before.outputs.keySet());
        int at = order.indexOf(swapped);
        for (int i = 0; i < at; i++)
            assertArrayEquals(before.outputs.get(order.get(i)), after.outputs.get(order.get(i)), order.get(i) + " runs before the swap: bit-identical");
        assertFalse(java.util.Arrays.equals(before.outputs.get(swapped), after.outputs.get(swapped)), "the swapped layer's own output differs");
    }

    @Test
    void theReadmeProcessorRunsAndChangesOnlyWhatItIsSetOn() {
        float[] plain = run(keyMask);
        AttentionProcessor sharpened = call -> { // the README's example, verbatim
            Backend be = call.backend();
            Tensor hot = be.scale(call.q(), 2f);
            Tensor p = be.attentionScores(hot, call.k(), call.heads(), call.hardMaskBias());
            return be.attend(p, call.v(), call.heads());
        };
        assertEquals(9, AttentionLayers.setProcessor(unet.attentionLayers(), "up_blocks.*attn2", sharpened).size());
        assertFalse(java.util.Arrays.equals(plain, run(keyMask)));
        unet.attentionLayers().forEach(a -> a.setProcessor(AttentionProcessor.FUSED));
        assertArrayEquals(plain, run(keyMask), "back to the default bits");
    }

    @Test
    void maskModeNoneEqualsAnAllOnesKeyMask() {
        float[] ones = run(onesMask);
        AttentionLayers.setProcessor(unet.attentionLayers(), "*attn2", new MaskedAttention(MaskedAttention.Mode.NONE, null));
        assertArrayEquals(ones, run(keyMask));
    }

    @Test
    void softMaskModeBiasesWithTheLogAreaFraction() {
        // with a soft mask equal to the hard one (0 or 1), soft differs from hard only by log(1e-4) vs -10000 on masked keys
        float[] hard = run(keyMask);
        AttentionLayers.setProcessor(unet.attentionLayers(), "*attn2", new MaskedAttention(MaskedAttention.Mode.SOFT, null));
        float[] soft = run(keyMask);
        assertFalse(java.util.Arrays.equals(hard, soft), "half-covered tokens now get attention");
        float[] again = be.toHost(unet.forward(sample, new float[]{0f}, context, keyMask, Probe.NONE, where(keyMask)));
        double maxDiff = 0;
        for (int i = 0; i < hard.length; i++) maxDiff = Math.max(maxDiff, Math.abs(hard[i] - again[i]));
        assertTrue(maxDiff < 1e-2, "a 0/1 soft mask is close to the hard mask: " + maxDiff);
    }

    @Test
    void recordedProbabilitiesAreTheOnesUsed() {
        float[] fused = run(keyMask);
        Map<String, float[]> probs = new LinkedHashMap<>();
        AttentionLayers.setProcessor(unet.attentionLayers(), "*attn2", new MaskedAttention(MaskedAttention.Mode.HARD,
                (call, p) -> probs.put(call.layer().name(), call.backend().toHost(p))));
        float[] recorded = run(keyMask);
        assertEquals(16, probs.size());
        double maxDiff = 0, scale = 0;
        for (int i = 0; i < fused.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(fused[i] - recorded[i]));
            scale = Math.max(scale, Math.abs(fused[i]));
        }
        assertTrue(maxDiff <= 1e-5 * scale, "unfused path within fp32 rounding of the fused one: " + maxDiff + " of " + scale);
        float[] m = be.toHost(keyMask);
        for (float[] p : probs.values())
            for (int row = 0; row < p.length / m.length; row++) {
                double sum = 0;
                for (int j = 0; j < m.length; j++) {
                    sum += p[row * m.length + j];
                    if (m[j] == 0f) assertTrue(p[row * m.length + j] < 1e-30);
                }
                assertEquals(1.0, sum, 1e-5);
            }
    }
}
