package io.refldmseg.model;

import io.refldmseg.engine.Tensor;

import java.util.List;

/**
 * What an {@link AttentionProcessor} knows about the call it is in: which network, which
 * denoising step and timestep (the UNet only), which classifier-free-guidance branch each batch
 * row is, and where each support shot's instruction tokens lie among the keys of a
 * cross-attention.
 *
 * @param timestep      the UNet's timestep (-f: 0), NaN outside the UNet
 * @param step          index of the -n denoising step (-f: 0), -1 outside the UNet
 * @param rows          the branch of each batch row of the UNet call (empty outside the UNet)
 * @param shots         support shots in the instruction (0 outside the UNet)
 * @param tokensPerShot keys each shot contributes (shot i owns keys [i * tokensPerShot, (i + 1) * tokensPerShot))
 * @param softKeyMask   per key, the support mask's area fraction on that token's patch, [B, Lk] like the
 *                      key mask (null outside the UNet): what {@code --mask-mode soft} biases with
 */
public record AttentionContext(Network network, float timestep, int step, List<Branch> rows, int shots, int tokensPerShot,
                               Tensor softKeyMask) {

    public enum Network {UNET, VAE, CLIP}

    /**
     * Ref LDM-Seg-n runs three rows per step: TEXT (the support instruction and the query latent),
     * IMAGE (the null instruction and the query latent), UNCONDITIONED (the null instruction and
     * a zero latent). -f runs one TEXT row.
     */
    public enum Branch {TEXT, IMAGE, UNCONDITIONED}

    public AttentionContext {
        rows = List.copyOf(rows);
    }

    /** A call outside the UNet (VAE mid-block, vision tower): no step, no branches, no shots. */
    public static AttentionContext outside(Network network) {
        return new AttentionContext(network, Float.NaN, -1, List.of(), 0, 0, null);
    }

    /** Keys [from, to) of support shot {@code shot} (0-based). */
    public int[] shotTokens(int shot) {
        if (shot < 0 || shot >= shots) throw new IllegalArgumentException("shot " + shot + " of " + shots);
        return new int[]{shot * tokensPerShot, (shot + 1) * tokensPerShot};
    }
}
