package io.refldmseg.loader.config;

import java.util.List;

/** Architecture of a diffusers AutoencoderKL. */
public record VaeConfig(int inChannels, int outChannels, List<Integer> blockOutChannels, int layersPerBlock,
                        int latentChannels, int normNumGroups, double scalingFactor) {
    public static final int DEFAULT_GROUPS = 32;
    public static final double DEFAULT_SCALING = 0.18215;

    /** Stable Diffusion's VAE (kl-f8). */
    public static VaeConfig stableDiffusion() {
        return new VaeConfig(3, 3, List.of(128, 256, 512, 512), 2, 4, 32, DEFAULT_SCALING);
    }
}
