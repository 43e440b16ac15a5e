package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.model.AttentionContext;
import io.refldmseg.model.AutoencoderKL;
import io.refldmseg.model.UNet2DConditionModel;

import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;

/** Ref LDM-Seg-f: one UNet step at t = 0 maps the scaled query latent straight to the pseudo-mask latent. */
final class SingleStepPredictor implements LatentPredictor {
    private final Backend be;
    private final UNet2DConditionModel unet;
    private final float latentScale;

    SingleStepPredictor(Backend be, UNet2DConditionModel unet, float latentScale) {
        this.be = be;
        this.unet = unet;
        this.latentScale = latentScale;
    }

    @Override
    public Tensor predict(AutoencoderKL.Posterior post, RefLdmSeg.Prompt p, Options o, RandomGenerator rng, PipelineListener keep) {
        Tensor latent = be.scale(posteriorLatent(post, o, rng), latentScale);
        Tensor pred = unet.forward(latent, new float[]{0f}, p.tokens(), p.keyMask(), io.refldmseg.model.Probe.NONE,
                LatentPredictor.unetCall(p, 0f, 0, List.of(AttentionContext.Branch.TEXT), p.softKeyMask()));
        if (keep != PipelineListener.NONE) {
            keep.onTensor("latent", HostCopies.nchw(be, latent));
            keep.onTensor("unet_pred", HostCopies.nchw(be, pred));
        }
        return pred;
    }

    /** Every request's latent and instruction as one UNet call of B rows (one row per request). */
    @Override
    public Tensor predictBatch(List<AutoencoderKL.Posterior> posts, List<RefLdmSeg.Prompt> prompts, List<Options> options, List<RandomGenerator> rngs) {
        int b = posts.size();
        List<Tensor> latents = new ArrayList<>(), tokens = new ArrayList<>(), masks = new ArrayList<>(), soft = new ArrayList<>();
        for (int i = 0; i < b; i++) {
            latents.add(posteriorLatent(posts.get(i), options.get(i), rngs.get(i)));
            tokens.add(prompts.get(i).tokens());
            masks.add(prompts.get(i).keyMask());
            soft.add(prompts.get(i).softKeyMask());
        }
        RefLdmSeg.Prompt first = prompts.getFirst();
        Tensor latent = be.scale(be.concatBatch(latents), latentScale);
        AttentionContext where = LatentPredictor.unetCall(first, 0f, 0, java.util.Collections.nCopies(b, AttentionContext.Branch.TEXT), be.concatBatch(soft));
        // requests with one support (video, dataset annotation) repeat their instruction: project each distinct one once
        List<Tensor> distinct = new ArrayList<>();
        int[] rowOf = distinctRows(tokens, distinct);
        if (distinct.size() == b)
            return unet.forward(latent, new float[b], be.concatBatch(tokens), be.concatBatch(masks), io.refldmseg.model.Probe.NONE, where);
        UNet2DConditionModel.ContextProjections shared = unet.contextProjections(be.concatBatch(distinct)).rows(rowOf);
        return unet.forward(latent, new float[b], shared, be.concatBatch(masks), io.refldmseg.model.Probe.NONE, where);
    }

    /** For each tensor, the index in {@code distinct} (filled here) of the first one equal to it in shape and values. */
    private int[] distinctRows(List<Tensor> tensors, List<Tensor> distinct) {
        List<float[]> values = new ArrayList<>();
        int[] rowOf = new int[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            float[] v = be.toHost(t);
            int j = 0;
            while (j < distinct.size() && !(java.util.Arrays.equals(distinct.get(j).shape(), t.shape()) && java.util.Arrays.equals(values.get(j), v))) j++;
            if (j == distinct.size()) {
                distinct.add(t);
                values.add(v);
            }
            rowOf[i] = j;
        }
        return rowOf;
    }

    @Override
    public boolean batchable(Options a, Options b) {
        return true;
    }

    /** The posterior mode, or with {@code --posterior sample} a draw from it (seeded, or the supplied eps). */
    private Tensor posteriorLatent(AutoencoderKL.Posterior post, Options o, RandomGenerator rng) {
        if (o.posterior() != Options.Posterior.SAMPLE) return post.mean();
        float[] eps = Noise.nhwc(o.noise() == null ? null : o.noise().posteriorEps(), post.mean(), rng, "posterior_eps");
        float[] mean = be.toHost(post.mean()), logvar = be.toHost(post.logvar()), s = new float[mean.length];
        for (int i = 0; i < s.length; i++) s[i] = mean[i] + (float) Math.exp(0.5f * Math.min(20f, Math.max(-30f, logvar[i]))) * eps[i];
        return be.tensor(s, post.mean().shape());
    }
}
