package io.refldmseg.loader.config;

/** Architecture of the (Alpha-)CLIP vision transformer. */
public record ClipConfig(int inputResolution, int patchSize, int width, int layers, int heads) {
    /** OpenAI CLIP's rule for the vision tower: heads = width / 64 (ViT-L/14: 16). */
    public static int defaultHeads(int width) {
        return Math.max(1, width / 64);
    }

    /** CLIP ViT-L/14 at 224 (Alpha-CLIP's tower in Ref LDM-Seg). */
    public static ClipConfig vitL14() {
        return new ClipConfig(224, 14, 1024, 24, 16);
    }

    public int gridSize() {
        return inputResolution / patchSize;
    }
}
