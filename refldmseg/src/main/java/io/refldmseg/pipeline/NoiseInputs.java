package io.refldmseg.pipeline;

/**
 * Noise supplied by the caller instead of drawn from the seeded RNG, NCHW as PyTorch stores it:
 * {@code initNoise} [1,4,h,w] (-n start latents), {@code stepNoise} [steps,1,4,h,w] (DDPM
 * variance noise), {@code posteriorEps} [1,4,h,w] (a sampled -f posterior). Any may be null.
 */
public record NoiseInputs(float[] initNoise, float[] stepNoise, float[] posteriorEps) {
}
