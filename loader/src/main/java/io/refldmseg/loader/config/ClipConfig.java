package io.refldmseg.loader.config;

/** Architecture of the (Alpha-)CLIP vision transformer. */
public record ClipConfig(int inputResolution, int patchSize, int width, int layers, int heads) {
    /** OpenAI CLIP's rule for the vision tower: heads = width / 64 (ViT-L/14: 16). */
    public static int defaultHeads(int width) {
        return Math.max(1, width / 64);
    }

    public int gridSize() {
        return inputResolution / patchSize;
    }
}
