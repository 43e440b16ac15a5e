package io.refldmseg.pipeline;

import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.TensorFile;
import io.refldmseg.model.AttentionContext;
import io.refldmseg.model.MaskedAttention;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.refldmseg.pipeline.PipelineFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

/** The step listener and the attention context the -n pipeline hands its processors. */
class PipelineListenerTest {
    @Test
    void nStepsReachTheListenerAndAgreeWithTheKeptTensors() {
        try (RefLdmSeg seg = open(tinyN()); TensorFile f = TensorFile.open(Fixtures.file("pipe_f2.safetensors"))) {
            RgbImage query = image(f.tensor("query_u8_hwc"), 0);
            List<Support> supports = supports(f);
            Options o = Options.defaults().withSteps(4).withSeed(3).withKeepTensors(true);
            List<PipelineListener.Step> steps = new ArrayList<>();
            List<HostTensor> prompts = new ArrayList<>(), logits = new ArrayList<>();
            Map<String, List<AttentionContext>> calls = new LinkedHashMap<>();
            seg.setAttentionProcessor("up_blocks.1.attentions.0.transformer_blocks.0.attn2", new MaskedAttention(MaskedAttention.Mode.HARD,
                    (call, p) -> calls.computeIfAbsent(call.layer().name(), k -> new ArrayList<>()).add(call.context())));
            Result r = seg.segment(query, supports, o, new PipelineListener() {
                @Override
                public void onPrompt(HostTensor tokens, HostTensor keyMask) {
                    prompts.add(tokens);
                }

                @Override
                public void onStep(Step step) {
                    steps.add(step);
                }

                @Override
                public void onLogits(HostTensor l) {
                    logits.add(l);
                }
            });
            seg.resetAttentionProcessors();
            assertEquals(1, prompts.size());
            assertEquals(1, logits.size());
            assertArrayEquals(r.tensors().get("logits").data(), logits.getFirst().data());
            assertEquals(4, steps.size());
            for (int i = 0; i < 4; i++) {
                assertEquals(i, steps.get(i).index());
                assertEquals(3, steps.get(i).rawPrediction().shape()[0], "three CFG rows");
                if (i > 0) assertArrayEquals(steps.get(i - 1).latentOut().data(), steps.get(i).latentIn().data(), "steps chain");
            }
            assertArrayEquals(r.tensors().get("final_latents").data(), steps.getLast().latentOut().data());
            List<AttentionContext> seen = calls.get("up_blocks.1.attentions.0.transformer_blocks.0.attn2");
            assertEquals(4, seen.size(), "one call per step");
            for (int i = 0; i < 4; i++) {
                AttentionContext c = seen.get(i);
                assertEquals(i, c.step());
                assertEquals(steps.get(i).timestep(), c.timestep());
                assertEquals(List.of(AttentionContext.Branch.TEXT, AttentionContext.Branch.IMAGE, AttentionContext.Branch.UNCONDITIONED), c.rows());
                assertEquals(supports.size(), c.shots());
                assertArrayEquals(new int[]{0, c.tokensPerShot()}, c.shotTokens(0));
                assertEquals(3, c.softKeyMask().dim(0));
            }
        }
    }
}
