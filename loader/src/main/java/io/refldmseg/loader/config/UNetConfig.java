package io.refldmseg.loader.config;

import java.util.List;

/**
 * Architecture of a diffusers UNet2DConditionModel as far as the engine needs it.
 *
 * @param attentionHeads heads per down block (diffusers' "attention_head_dim", which in SD1.5
 *                       configs is the number of heads, not their width)
 * @param encoderHidDim  input width of the encoder_hid_proj adapter, 0 when the model has none
 */
public record UNetConfig(int inChannels, int outChannels, List<Integer> blockOutChannels,
                         List<String> downBlockTypes, List<String> upBlockTypes, int layersPerBlock,
                         int normNumGroups, double normEps, int crossAttentionDim, List<Integer> attentionHeads,
                         int encoderHidDim, boolean useLinearProjection, boolean flipSinToCos, int freqShift) {

    /** SD1.5 defaults for what weight shapes cannot tell. */
    public static final int DEFAULT_HEADS = 8;
    public static final int DEFAULT_GROUPS = 32;
    public static final double DEFAULT_EPS = 1e-5;

    /** Stable Diffusion 1.5's UNet with Ref LDM-Seg's 1024 -> 768 encoder_hid_proj adapter. */
    public static UNetConfig stableDiffusion15(int inChannels) {
        List<String> down = List.of("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D");
        List<String> up = List.of("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D");
        return new UNetConfig(inChannels, 4, List.of(320, 640, 1280, 1280), down, up, 2, 32, 1e-5, 768,
                List.of(8, 8, 8, 8), 1024, false, true, 0);
    }

    public int levels() {
        return blockOutChannels.size();
    }

    public boolean downHasAttention(int level) {
        return downBlockTypes.get(level).startsWith("CrossAttn");
    }

    public boolean upHasAttention(int level) {
        return upBlockTypes.get(level).startsWith("CrossAttn");
    }
}
