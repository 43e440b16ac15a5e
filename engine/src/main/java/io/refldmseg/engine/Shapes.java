package io.refldmseg.engine;

import java.util.Arrays;
import java.util.List;

/** Shape rules every backend checks its inputs against, in one place so their messages agree. */
public final class Shapes {
    private Shapes() {
    }

    /** [N, OH, OW, out] of a conv of NHWC {@code x}, or a message naming what does not fit. */
    public static int[] conv2d(Tensor x, ConvWeights w, int stride, Padding pad) {
        if (x.rank() != 4 || x.dim(3) != w.inChannels())
            throw new IllegalArgumentException("conv2d expects [N, H, W, " + w.inChannels() + "], got " + x);
        int oh = (x.dim(1) + pad.top() + pad.bottom() - w.kernelHeight()) / stride + 1;
        int ow = (x.dim(2) + pad.left() + pad.right() - w.kernelWidth()) / stride + 1;
        if (oh <= 0 || ow <= 0) throw new IllegalArgumentException("conv2d input " + x + " smaller than its kernel");
        return new int[]{x.dim(0), oh, ow, w.outChannels()};
    }

    /** Checks q [B, Lq, C], k and v [B, Lk, C], C a multiple of heads, the key mask [B, Lk]. */
    public static void attention(Tensor q, Tensor k, Tensor v, int heads, Tensor keyMask) {
        int b = q.dim(0), c = q.dim(2), lk = k.dim(1);
        if (k.dim(0) != b || v.dim(0) != b || k.dim(2) != c || v.dim(2) != c || v.dim(1) != lk || c % heads != 0)
            throw new IllegalArgumentException("attention shapes q " + q + " k " + k + " v " + v + " heads " + heads);
        if (keyMask != null && (keyMask.dim(0) != b || keyMask.dim(1) != lk))
            throw new IllegalArgumentException("key mask " + keyMask + " does not match keys " + k);
    }

    /** The shape of parts joined along dim 1 (all else equal). */
    public static int[] concatDim1(List<Tensor> parts) {
        Tensor first = parts.getFirst();
        int n = first.dim(0);
        long inner = first.numel() / ((long) n * first.dim(1));
        int total = 0;
        for (Tensor t : parts) {
            if (t.dim(0) != n || t.numel() / ((long) n * t.dim(1)) != inner) throw new IllegalArgumentException("cannot concat " + parts);
            total += t.dim(1);
        }
        int[] shape = first.shape();
        shape[1] = total;
        return shape;
    }

    /** The shape of parts stacked along the batch (all else equal). */
    /** The shape of rows [from, from + count) of dimension 0, or an exception naming the range. */
    public static int[] sliceBatch(Tensor x, int from, int count) {
        if (x.rank() < 1 || from < 0 || count < 1 || from + count > x.dim(0))
            throw new IllegalArgumentException("batch rows [" + from + ", " + ((long) from + count) + ") of " + x);
        int[] shape = x.shape();
        shape[0] = count;
        return shape;
    }

    /** The shape of the top-left h x w of [N, H, W, C], or an exception naming the sizes. */
    public static int[] crop(Tensor x, int h, int w) {
        if (x.rank() != 4 || h < 1 || w < 1 || h > x.dim(1) || w > x.dim(2))
            throw new IllegalArgumentException("cannot crop " + x + " to " + h + "x" + w);
        return new int[]{x.dim(0), h, w, x.dim(3)};
    }

    public static int[] concatBatch(List<Tensor> parts) {
        int[] shape = parts.getFirst().shape();
        int total = 0;
        for (Tensor t : parts) {
            int[] s = t.shape();
            s[0] = shape[0];
            if (!Arrays.equals(s, shape)) throw new IllegalArgumentException("cannot stack " + parts);
            total += t.dim(0);
        }
        shape[0] = total;
        return shape;
    }
}
