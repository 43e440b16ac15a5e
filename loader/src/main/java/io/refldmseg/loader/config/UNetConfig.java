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
