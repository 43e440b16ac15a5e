package io.refldmseg.pipeline;

import java.util.Map;

/**
 * The answer for one query: the mask at the query's original size (1 = object), the three
 * pseudo-mask logit channels at that size (channel-major [3, H, W], image term removed),
 * intermediates when asked for, and where the time went.
 */
public record Result(int width, int height, byte[] mask, float[] logits, Map<String, HostTensor> tensors, Timings timings) {

    public record Timings(long promptMillis, long encodeMillis, long unetMillis, long decodeMillis, long totalMillis) {
        @Override
        public String toString() {
            return String.format("prompt %d ms, VAE encode %d ms, UNet %d ms, VAE decode %d ms, total %d ms",
                    promptMillis, encodeMillis, unetMillis, decodeMillis, totalMillis);
        }
    }

    public long foregroundPixels() {
        long n = 0;
        for (byte b : mask) n += b;
        return n;
    }
}
