package io.refldmseg.pipeline;

/**
 * Sees a request's stages as they happen (diffusers' {@code callback_on_step_end}, and more).
 * Every method has a no-op default; the values are host copies (NCHW for images and latents),
 * made only when a listener other than {@link #NONE} is attached, and the listener may keep them.
 * Calls come on the thread running the request, in pipeline order.
 */
public interface PipelineListener {
    /** Once per request: the instruction tokens [1, k * L, W] (before the UNet's adapter) and the key mask [1, k * L]. */
    default void onPrompt(HostTensor tokens, HostTensor keyMask) {
    }

    /** -n, after each denoising step. */
    default void onStep(Step step) {
    }

    /** Once per request: the decoded logits [1, 3, S, S] in the model square (image term removed), before cropping. */
    default void onLogits(HostTensor logits) {
    }

    /**
     * Every named intermediate the golden fixtures check (sx224, alpha224, sy16, tokens_all,
     * prompt_embeds, symask, latent_mean, latent_logvar, latent, unet_pred, null_prompt,
     * image_latents, init_noise, step_latents_out, step_unet_raw, step_eps_guided, final_latents,
     * logits, mask): what {@code --save-tensors} writes.
     */
    default void onTensor(String name, HostTensor value) {
    }

    /**
     * One -n step: index i (from 0) at {@code timestep}; the latent going in [1, 4, h, w], the
     * raw UNet prediction (rows text, image, unconditioned when guided), the guided prediction,
     * and the latent the scheduler made from it.
     */
    record Step(int index, int timestep, HostTensor latentIn, HostTensor rawPrediction, HostTensor guidedPrediction,
                HostTensor latentOut) {
    }

    PipelineListener NONE = new PipelineListener() {
    };

    /** Both listeners, {@code first} then {@code second}. */
    static PipelineListener both(PipelineListener first, PipelineListener second) {
        if (first == NONE) return second;
        if (second == NONE) return first;
        return new PipelineListener() {
            @Override
            public void onPrompt(HostTensor tokens, HostTensor keyMask) {
                first.onPrompt(tokens, keyMask);
                second.onPrompt(tokens, keyMask);
            }

            @Override
            public void onStep(Step step) {
                first.onStep(step);
                second.onStep(step);
            }

            @Override
            public void onLogits(HostTensor logits) {
                first.onLogits(logits);
                second.onLogits(logits);
            }

            @Override
            public void onTensor(String name, HostTensor value) {
                first.onTensor(name, value);
                second.onTensor(name, value);
            }
        };
    }

    /** Collects every named intermediate into a map (what {@code Options.keepTensors} puts in the Result). */
    final class TensorCollector implements PipelineListener {
        private final java.util.Map<String, HostTensor> tensors = new java.util.LinkedHashMap<>();

        @Override
        public void onTensor(String name, HostTensor value) {
            tensors.put(name, value);
        }

        public java.util.Map<String, HostTensor> tensors() {
            return java.util.Collections.unmodifiableMap(tensors);
        }
    }
}
