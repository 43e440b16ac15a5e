package io.refldmseg.pipeline;

import io.refldmseg.engine.Tensor;
import io.refldmseg.model.AttentionContext;
import io.refldmseg.model.AutoencoderKL;

import java.util.List;
import java.util.random.RandomGenerator;

/** One meta-architecture's way from the query's VAE posterior and the instruction to the pseudo-mask latent. */
interface LatentPredictor {
    /** The scaled pseudo-mask latent [1, h, w, latent] the VAE decodes. */
    Tensor predict(AutoencoderKL.Posterior posterior, RefLdmSeg.Prompt prompt, Options options, RandomGenerator rng, PipelineListener listener);

    /**
     * The same for several requests in one pass ([B, h, w, latent], request i in row i), equal bit
     * for bit to {@link #predict} of each alone. Requests share the prompt's shot count and, where
     * {@link #batchable} says so, their options.
     */
    Tensor predictBatch(List<AutoencoderKL.Posterior> posteriors, List<RefLdmSeg.Prompt> prompts, List<Options> options, List<RandomGenerator> rngs);

    /** Whether requests with these options may share a batch (shot counts are checked by the caller). */
    boolean batchable(Options a, Options b);

    /** What the attention processors are told about one UNet call of a request. */
    static AttentionContext unetCall(RefLdmSeg.Prompt p, float timestep, int step, List<AttentionContext.Branch> rows, Tensor softKeyMask) {
        return new AttentionContext(AttentionContext.Network.UNET, timestep, step, rows, p.shots(), p.keyMask().dim(1) / p.shots(), softKeyMask);
    }
}
