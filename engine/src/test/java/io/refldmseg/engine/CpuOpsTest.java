package io.refldmseg.engine;

import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static io.refldmseg.engine.Golden.*;
import static org.junit.jupiter.api.Assertions.*;

/** Every CPU op against ops.safetensors, each at 10x its recorded fp32-vs-fp64 error. */
class CpuOpsTest {
    static TensorFile ops;
    static final Backend be = new CpuBackend();

    @BeforeAll
    static void open() {
        ops = Golden.open("ops.safetensors");
    }

    @AfterAll
    static void close() {
        ops.close();
    }

    static Tensor image(String name) {
        return Golden.image(be, ops.tensor(name));
    }

    static Tensor plain(String name) {
        return Golden.plain(be, ops.tensor(name));
    }

    static void checkImage(String key, Tensor y) {
        TensorData ref = ops.tensor(key);
        assertArrayEquals(new int[]{ref.dim(0), ref.dim(2), ref.dim(3), ref.dim(1)}, y.shape(), key);
        assertClose(key, nhwc(ref), be.toHost(y), tolerance("ops/" + key));
    }

    static void checkPlain(String key, Tensor y, double atol) {
        assertClose(key, ops.tensor(key).toFloats(), be.toHost(y), atol);
    }

    static ConvWeights conv(String w, String b) {
        TensorData t = ops.tensor(w);
        return be.convWeights(t.toFloats(), t.dim(0), t.dim(1), t.dim(2), t.dim(3), b == null ? null : ops.tensor(b).toFloats());
    }

    @Test
    void convolutions() {
        Tensor x = image("conv.x");
        checkImage("conv3x3_s1_p1.y", be.conv2d(x, conv("conv.w3", "conv.b"), 1, Padding.same(1)));
        checkImage("conv3x3_s2_p1.y", be.conv2d(x, conv("conv.w3", "conv.b"), 2, Padding.same(1)));
        checkImage("conv3x3_s2_pad0101.y", be.conv2d(x, conv("conv.w3", "conv.b"), 2, Padding.BOTTOM_RIGHT_1));
        checkImage("conv1x1.y", be.conv2d(x, conv("conv.w1", "conv.b"), 1, Padding.NONE));
        checkImage("conv3x3_s1_p1_nobias.y", be.conv2d(x, conv("conv.w3", null), 1, Padding.same(1)));
        checkImage("patchconv.y", be.conv2d(image("patchconv.x"), conv("patchconv.w", null), 14, Padding.NONE));
    }

    /** The Winograd path (forced on these small images) against the same fixtures and tolerances. */
    @Test
    void winogradConvolution() {
        Backend wino = new CpuBackend(CpuBackend.cores(), 0);
        TensorData x = ops.tensor("conv.x"), w = ops.tensor("conv.w3");
        Tensor xt = wino.tensor(nhwc(x), x.dim(0), x.dim(2), x.dim(3), x.dim(1));
        for (String[] c : new String[][]{{"conv3x3_s1_p1.y", "conv.b"}, {"conv3x3_s1_p1_nobias.y", null}}) {
            ConvWeights cw = wino.convWeights(w.toFloats(), w.dim(0), w.dim(1), 3, 3, c[1] == null ? null : ops.tensor(c[1]).toFloats());
            assertClose("winograd " + c[0], nhwc(ops.tensor(c[0])), wino.toHost(wino.conv2d(xt, cw, 1, Padding.same(1))), tolerance("ops/" + c[0]));
        }
    }

    @Test
    void groupNorms() {
        Tensor x = image("gn.x"), g = plain("gn.w"), b = plain("gn.b");
        checkImage("gn_g32_eps1e-6.y", be.groupNorm(x, 32, g, b, 1e-6f, false));
        checkImage("gn_g32_eps1e-5.y", be.groupNorm(x, 32, g, b, 1e-5f, false));
        checkImage("gn_g8_eps1e-6.y", be.groupNorm(x, 8, g, b, 1e-6f, false));
        checkImage("gn_g8_eps1e-5_silu.y", be.groupNorm(x, 8, g, b, 1e-5f, true));
        checkImage("gn_g32_eps1e-6_silu.y", be.groupNorm(x, 32, g, b, 1e-6f, true));
    }

    @Test
    void layerNorm() {
        checkPlain("ln_eps1e-5.y", be.layerNorm(plain("ln.x"), plain("ln.w"), plain("ln.b"), 1e-5f), tolerance("ops/ln_eps1e-5.y"));
    }

    /** The fixture's LoRA case: its base linear (with bias) and its adapter. */
    private record LoraCase(LinearWeights base, LoraAdapter lora) {
    }

    private LoraCase loraCase() {
        TensorData w = ops.tensor("lora.W"), a = ops.tensor("lora.A"), bb = ops.tensor("lora.B");
        LinearWeights base = be.linearWeights(w.toFloats(), w.dim(0), w.dim(1), ops.tensor("lora.b").toFloats());
        return new LoraCase(base, new LoraAdapter(be.linearWeights(a.toFloats(), a.dim(0), a.dim(1), null),
                be.linearWeights(bb.toFloats(), bb.dim(0), bb.dim(1), null), ops.tensor("lora.scale").toFloats()[0]));
    }

    @Test
    void linearWithFusedLora() {
        LoraCase fixture = loraCase();
        LinearWeights base = fixture.base();
        LoraAdapter lora = fixture.lora();
        Tensor x = plain("lora.x");
        checkPlain("lora.y", be.linear(x, base, List.of(lora)), tolerance("ops/lora.y"));
        // adapters are swappable: the base weights are untouched by having used one
        checkPlain("lora.y_base", be.linear(x, base), tolerance("ops/lora.y"));
        // two adapters sum: half the scale twice equals the full scale once
        LoraAdapter half = new LoraAdapter(lora.down(), lora.up(), lora.scale() / 2);
        checkPlain("lora.y", be.linear(x, base, List.of(half, half)), tolerance("ops/lora.y"));
    }

    /** The residual folded into the GEMM gives the separate add's sum up to fp32 rounding, adapters included; a wrong shape is refused. */
    @Test
    void linearResidualIsTheLinearPlusTheResidual() {
        LoraCase fixture = loraCase();
        LinearWeights base = fixture.base();
        LoraAdapter lora = fixture.lora();
        Tensor x = plain("lora.x");
        for (List<LoraAdapter> adapters : List.of(List.<LoraAdapter>of(), List.of(lora))) {
            Tensor y = be.linear(x, base, adapters);
            Random r = new Random(3);
            float[] res = new float[Math.toIntExact(y.numel())];
            for (int i = 0; i < res.length; i++) res[i] = (float) r.nextGaussian();
            Tensor residual = be.tensor(res, y.shape());
            float[] separate = be.toHost(be.add(residual, y)), fused = be.toHost(be.linearResidual(x, base, adapters, residual));
            for (int i = 0; i < fused.length; i++)
                assertEquals(separate[i], fused[i], 1e-5 * Math.max(1, Math.abs(separate[i])), adapters.size() + " adapters, element " + i);
            int[] wrongShape = y.shape();
            wrongShape[0]++;
            Tensor wrong = be.tensor(new float[res.length / y.dim(0) * wrongShape[0]], wrongShape);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.linearResidual(x, base, adapters, wrong));
            assertTrue(e.getMessage().contains("residual"), e.getMessage());
        }
    }

    @Test
    void attentionWithAndWithoutKeyMask() {
        Tensor q = plain("attn.q"), k = plain("attn.k"), v = plain("attn.v");
        int heads = (int) ops.tensor("attn.heads").toLongs()[0];
        checkPlain("attn.y_nomask", be.attention(q, k, v, heads, null), tolerance("ops/attn.y_nomask"));
        // batch 2 has every key masked: softmax(s - 10000), the unmasked attention up to fp32 rounding
        checkPlain("attn.y_mask", be.attention(q, k, v, heads, plain("attn.mask")), tolerance("ops/attn.y_mask"));
    }

    /**
     * Keys of mask 0 beside a key of mask 1, which the fused op leaves out of its products: it equals
     * the softmax over every key with its bias (the unfused ops) to rounding, on both product paths
     * (head dims 40 and 64), with rows of different masks and a fractional mask value; and each sample
     * of the batch gets the bits it gets alone.
     */
    @Test
    void attentionLeavesOutMaskedKeysWithoutChangingTheResult() {
        Random r = new Random(5);
        int b = 3, lq = 37, lk = 70;
        for (int[] shape : new int[][]{{80, 2}, {128, 2}}) {
            int c = shape[0], heads = shape[1];
            float[] q = new float[b * lq * c], k = new float[b * lk * c], v = new float[b * lk * c], m = new float[b * lk], bias = new float[b * lk];
            for (float[] x : new float[][]{q, k, v}) for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < m.length; i++) m[i] = r.nextInt(5) == 0 ? 1f : 0f;
            for (int row = 0; row < b; row++) m[row * lk + row] = 1f;
            m[2 * lk + 9] = 0.5f;
            for (int i = 0; i < m.length; i++) bias[i] = (1f - m[i]) * -10000f;
            Tensor qt = be.tensor(q, b, lq, c), kt = be.tensor(k, b, lk, c), vt = be.tensor(v, b, lk, c);
            float[] fused = be.toHost(be.attention(qt, kt, vt, heads, be.tensor(m, b, lk)));
            float[] reference = be.toHost(be.attentionWithBias(qt, kt, vt, heads, be.tensor(bias, b, 1, 1, lk)));
            for (int i = 0; i < fused.length; i++) assertEquals(reference[i], fused[i], 1e-5 * Math.max(1, Math.abs(reference[i])), c + " channels, element " + i);
            int one = lq * c;
            float[] alone = be.toHost(be.attention(be.tensor(java.util.Arrays.copyOfRange(q, one, 2 * one), 1, lq, c),
                    be.tensor(java.util.Arrays.copyOfRange(k, lk * c, 2 * lk * c), 1, lk, c), be.tensor(java.util.Arrays.copyOfRange(v, lk * c, 2 * lk * c), 1, lk, c),
                    heads, be.tensor(java.util.Arrays.copyOfRange(m, lk, 2 * lk), 1, lk)));
            assertArrayEquals(java.util.Arrays.copyOfRange(fused, one, 2 * one), alone, c + " channels: sample 1 alone");
        }
    }

    @Test
    void unfusedAttentionReproducesTheFusedOpAndADoubleReference() {
        Tensor q = plain("attn.q"), k = plain("attn.k"), v = plain("attn.v"), mask = plain("attn.mask");
        int heads = (int) ops.tensor("attn.heads").toLongs()[0];
        checkPlain("attn.y_nomask", be.attend(be.attentionScores(q, k, heads, null), v, heads), tolerance("ops/attn.y_nomask"));
        float[] m = be.toHost(mask);
        Tensor bias = be.tensor(UnfusedAttention.hardMaskBias(m), mask.dim(0), 1, 1, mask.dim(1));
        checkPlain("attn.y_mask", be.attend(be.attentionScores(q, k, heads, bias), v, heads), tolerance("ops/attn.y_mask"));
        checkPlain("attn.y_mask", be.attentionWithBias(q, k, v, heads, bias), tolerance("ops/attn.y_mask"));
        // the probabilities against a double-precision softmax of the same scores; rows sum to 1, masked keys ~0
        float[] p = be.toHost(be.attentionScores(q, k, heads, bias)), qd = be.toHost(q), kd = be.toHost(k);
        int b = q.dim(0), lq = q.dim(1), c = q.dim(2), lk = k.dim(1), d = c / heads;
        for (int bi = 0; bi < b; bi++) {
            boolean anyKept = false;
            for (int j = 0; j < lk; j++) anyKept |= m[bi * lk + j] != 0f;
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < lq; i++) {
                    double[] s = new double[lk];
                    double max = Double.NEGATIVE_INFINITY, sum = 0, rowSum = 0;
                    for (int j = 0; j < lk; j++) {
                        double dot = 0;
                        for (int x = 0; x < d; x++) dot += (double) qd[(bi * lq + i) * c + h * d + x] * kd[(bi * lk + j) * c + h * d + x];
                        s[j] = dot / Math.sqrt(d) + (1 - m[bi * lk + j]) * -10000.0;
                        max = Math.max(max, s[j]);
                    }
                    for (int j = 0; j < lk; j++) sum += Math.exp(s[j] - max);
                    for (int j = 0; j < lk; j++) {
                        float got = p[((bi * heads + h) * lq + i) * lk + j];
                        assertEquals(Math.exp(s[j] - max) / sum, got, 1e-6, "p[" + bi + "," + h + "," + i + "," + j + "]");
                        if (anyKept && m[bi * lk + j] == 0f) assertTrue(got < 1e-30, "masked key gets ~0");
                        rowSum += got;
                    }
                    assertEquals(1.0, rowSum, 1e-5, "row sums to 1");
                }
        }
        // broadcast rules: a [1, 1, 1, Lk] bias applies to every batch row; a wrong shape is refused
        assertThrows(IllegalArgumentException.class, () -> be.attentionScores(q, k, heads, be.tensor(new float[lk + 1], 1, 1, 1, lk + 1)));
    }

    @Test
    void softmaxAndActivations() {
        checkPlain("softmax.y", be.softmax(plain("softmax.x")), tolerance("ops/softmax.y"));
        Tensor x = plain("act.x");
        checkPlain("gelu_erf.y", be.gelu(x), tolerance("ops/gelu_erf.y"));
        checkPlain("quickgelu.y", be.quickGelu(x), tolerance("ops/quickgelu.y"));
        checkPlain("silu.y", be.silu(x), tolerance("ops/silu.y"));
    }

    @Test
    void gegluFeedForward() {
        TensorData pw = ops.tensor("geglu.proj.weight"), ow = ops.tensor("ff.out.weight");
        Tensor h = be.geglu(be.linear(plain("geglu.x"), be.linearWeights(pw.toFloats(), pw.dim(0), pw.dim(1), ops.tensor("geglu.proj.bias").toFloats())));
        checkPlain("geglu.y", h, tolerance("ops/geglu.y"));
        Tensor y = be.linear(h, be.linearWeights(ow.toFloats(), ow.dim(0), ow.dim(1), ops.tensor("ff.out.bias").toFloats()));
        checkPlain("ff.y", y, tolerance("ops/ff.y"));
    }

    @Test
    void resampling() {
        Tensor up = be.upsampleNearest2x(image("up2x.x"));
        assertClose("up2x.y", nhwc(ops.tensor("up2x.y")), be.toHost(up), 0);
        // the 224 resize has no .f64 kept; its recorded error is against the fp64 of the same op
        checkImage("bilinear.img224", be.resizeBilinear(image("bilinear.img256"), 224, 224));
        Tensor x = image("bilinear.x37x53");
        checkImage("bilinear.down16x16", be.resizeBilinear(x, 16, 16));
        checkImage("bilinear.up61x90", be.resizeBilinear(x, 61, 90));
        checkImage("bilinear.up100x140", be.resizeBilinear(x, 100, 140));
    }

    @Test
    void nearestResizeOfMasks() {
        long[] idx224 = ops.tensor("nearest.src_index_256_to_224").toLongs(), idx16 = ops.tensor("nearest.src_index_256_to_16").toLongs();
        for (int i = 0; i < 224; i++) assertEquals(idx224[i], CpuBackend.nearestIndex(i, 256, 224));
        for (int i = 0; i < 16; i++) assertEquals(idx16[i], CpuBackend.nearestIndex(i, 256, 16));
        for (String[] c : new String[][]{{"nearest.mask256", "nearest.mask16", "16", "16"}, {"nearest.mask256", "nearest.mask224", "224", "224"},
                {"nearest.mask300x451", "nearest.mask300x451_to16", "16", "16"}, {"nearest.mask300x451", "nearest.mask300x451_to224", "224", "224"}}) {
            Tensor y = be.resizeNearest(image(c[0]), Integer.parseInt(c[2]), Integer.parseInt(c[3]));
            assertClose(c[1], nhwc(ops.tensor(c[1])), be.toHost(y), 0);
        }
    }

    @Test
    void timestepEmbedding() {
        long[] t = ops.tensor("temb.t").toLongs();
        float[] tf = new float[t.length];
        for (int i = 0; i < t.length; i++) tf[i] = t[i];
        checkPlain("temb.dim320", be.timestepEmbedding(tf, 320, true, 0), tolerance("ops/temb.dim320"));
        checkPlain("temb.dim32", be.timestepEmbedding(tf, 32, true, 0), tolerance("ops/temb.dim32"));
    }

    /** Running the same op twice, cold and after JIT warm-up, gives the same bits (no JIT-dependent rounding). */
    @Test
    void deterministicAcrossJitTiers() {
        Tensor q = plain("attn.q"), k = plain("attn.k"), v = plain("attn.v"), m = plain("attn.mask");
        Tensor gx = image("gn.x"), g = plain("gn.w"), b = plain("gn.b");
        float[] first = be.toHost(be.attention(q, k, v, 4, m)), gnFirst = be.toHost(be.groupNorm(gx, 8, g, b, 1e-5f, true));
        for (int i = 0; i < 3000; i++) {
            be.attention(q, k, v, 4, m);
            be.groupNorm(gx, 8, g, b, 1e-5f, true);
        }
        assertArrayEquals(first, be.toHost(be.attention(q, k, v, 4, m)));
        assertArrayEquals(gnFirst, be.toHost(be.groupNorm(gx, 8, g, b, 1e-5f, true)));
    }

    /** GEMM against a naive double-precision reference on ragged shapes (edges in M, N and K > KC). */
    @Test
    void gemmRaggedShapes() {
        Random r = new Random(7);
        int[][] shapes = {{1, 1, 1}, {7, 33, 5}, {13, 70, 600}, {100, 31, 1100}, {257, 64, 64}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            float[] x = new float[m * k], w = new float[n * k], b = new float[n];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
            for (int i = 0; i < n; i++) b[i] = (float) r.nextGaussian();
            float[] y = be.toHost(be.linear(be.tensor(x, m, k), be.linearWeights(w, n, k, b)));
            float[] ref = new float[m * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double acc = b[j];
                    for (int kk = 0; kk < k; kk++) acc += (double) x[i * k + kk] * w[j * k + kk];
                    ref[i * n + j] = (float) acc;
                }
            assertClose("gemm " + m + "x" + n + "x" + k, ref, y, 1e-5 * Math.sqrt(k) * 4);
        }
    }

    /**
     * Direct conv against a naive double reference where K slices cut through taps (c = 70, K = 630
     * and 1120 are not multiples of the slice), with stride 2, asymmetric padding and ragged M, N.
     */
    @Test
    void convIm2colSlicesAcrossTaps() {
        Random r = new Random(11);
        int n = 2, h = 9, wd = 7, c = 70, out = 37;
        Padding[] pads = {Padding.same(1), Padding.BOTTOM_RIGHT_1};
        for (int ks : new int[]{3, 4}) for (int stride : new int[]{1, 2}) for (Padding pad : pads) {
            float[] x = new float[n * h * wd * c], w = new float[out * c * ks * ks], b = new float[out];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
            for (int i = 0; i < out; i++) b[i] = (float) r.nextGaussian();
            Tensor y = be.conv2d(be.tensor(x, n, h, wd, c), be.convWeights(w, out, c, ks, ks, b), stride, pad);
            int oh = y.dim(1), ow = y.dim(2);
            float[] ref = new float[n * oh * ow * out];
            for (int bi = 0; bi < n; bi++) for (int oy = 0; oy < oh; oy++) for (int ox = 0; ox < ow; ox++) for (int o = 0; o < out; o++) {
                double acc = b[o];
                for (int ky = 0; ky < ks; ky++) for (int kx = 0; kx < ks; kx++) {
                    int iy = oy * stride - pad.top() + ky, ix = ox * stride - pad.left() + kx;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                    for (int ci = 0; ci < c; ci++)
                        acc += (double) x[((bi * h + iy) * wd + ix) * c + ci] * w[((o * c + ci) * ks + ky) * ks + kx];
                }
                ref[((bi * oh + oy) * ow + ox) * out + o] = (float) acc;
            }
            assertClose("conv " + ks + "x" + ks + " s" + stride + " " + pad, ref, be.toHost(y), 1e-5 * Math.sqrt(c * ks * ks) * 4);
        }
    }
}
