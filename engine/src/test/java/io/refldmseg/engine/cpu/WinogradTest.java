package io.refldmseg.engine.cpu;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Winograd F(2x2, 3x3) and F(4x2, 3x3) against a double-precision convolution, next to the direct fp32 path. */
class WinogradTest {
    static final Parallel PAR = new Parallel(CpuBackend.cores());

    @Test
    void errorStaysWithinAnOrderOfMagnitudeOfDirectFp32() {
        Random r = new Random(5);
        // F(2x2) few tiles x 3, then F(4x2): several tile blocks per core; ragged rows and columns with channel tails; a deep
        // input; images one tile high (3 of its 4 rows inside) and one tile wide (the right column outside)
        int[][] shapes = {{2, 9, 14, 19, 21}, {1, 8, 8, 32, 48}, {1, 17, 5, 3, 7}, {1, 40, 38, 5, 6}, {2, 21, 23, 37, 19}, {1, 26, 30, 256, 40},
                {1, 3, 250, 8, 9}, {2, 250, 1, 8, 9}};
        for (int si = 0; si < shapes.length; si++) {
            int[] s = shapes[si];
            int n = s[0], h = s[1], w = s[2], cin = s[3], cout = s[4];
            assertEquals(si < 3 ? Winograd.Tiling.F2X2 : Winograd.Tiling.F4X2, Winograd.Tiling.of(h, w), java.util.Arrays.toString(s));
            float[] x = new float[n * h * w * cin], wt = new float[cout * cin * 9], b = new float[cout];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < wt.length; i++) wt[i] = (float) (r.nextGaussian() / Math.sqrt(9 * cin));
            for (int i = 0; i < cout; i++) b[i] = (float) r.nextGaussian() * 0.1f;
            double[] ref = reference(x, wt, b, n, h, w, cin, cout);
            float[] direct = run(new CpuBackend(CpuBackend.cores(), Integer.MAX_VALUE), x, wt, b, s), wino = run(new CpuBackend(CpuBackend.cores(), 0), x, wt, b, s);
            double errDirect = maxErr(ref, direct), errWino = maxErr(ref, wino), maxRef = 0;
            for (double v : ref) maxRef = Math.max(maxRef, Math.abs(v));
            double bound = 10 * Math.max(errDirect, 1e-7 * maxRef);
            assertTrue(errWino <= bound, java.util.Arrays.toString(s) + ": winograd error " + errWino + " vs direct " + errDirect);
        }
    }

    /**
     * Both ways of making U as it is used (per call for many tiles, per panel slice inside the
     * few-tiles path: output channels split over tasks, input channels in slices) give the bits of
     * a product with U made by the formula, scalar and pair by pair: the same U, the same products
     * in the same order; with fp32 and fp16 weights, ragged panels, several input slices, a batch.
     */
    @Test
    void bothPathsGiveTheBitsOfUMadeByTheFormula() {
        Random r = new Random(9);
        int[][] shapes = {{3, 8, 8, 300, 70}, {1, 16, 16, 40, 33}, {2, 5, 7, 19, 21}, {1, 4, 4, 600, 64}, {2, 30, 26, 37, 40}}; // n, h, w, cin, cout; the last: several tile blocks
        float[][] buffers = new float[Winograd.MAX_POSITIONS][7]; // reused across shapes as a thread's calls reuse them: too small at first, then stale
        for (int[] s : shapes) {
            for (String kind : new String[]{"fp32", "fp16", "bf16"}) {
                boolean half = !kind.equals("fp32");
                int n = s[0], h = s[1], w = s[2], cin = s[3], cout = s[4];
                float[] x = new float[n * h * w * cin], wt = weightsOfKind(r, cout * 9 * cin, cin, kind), b = new float[cout];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int i = 0; i < cout; i++) b[i] = (float) r.nextGaussian();
                Gemm.Packed direct = new Gemm.Packed(PAR, wt, cout, 9 * cin, b); // [out][(ky, kx, in)]: the conv's packing
                assertEquals(half, direct.half != null);
                assertEquals(kind.equals("bf16"), direct.bf16, kind);
                float[] ref = new float[n * h * w * cout], few = new float[n * h * w * cout], perCall = new float[n * h * w * cout];
                java.util.Arrays.fill(few, Float.NaN); // every element must be written
                java.util.Arrays.fill(perCall, Float.NaN);
                Winograd.convTransformed(PAR, x, n, h, w, cin, formulaU(direct, cout, cin, Winograd.Tiling.F2X2), cout, direct.bias, ref);
                Winograd.convFewTiles(PAR, x, n, h, w, cin, direct, cout, direct.bias, few);
                assertArrayEquals(ref, few, java.util.Arrays.toString(s) + " " + kind + " few tiles");
                Winograd.convTransformed(PAR, x, n, h, w, cin, Winograd.transformWeights(PAR, direct, cin, buffers, Winograd.Tiling.F2X2), cout, direct.bias, perCall);
                assertArrayEquals(ref, perCall, java.util.Arrays.toString(s) + " " + kind + " U per call");
            }
        }
    }

    /**
     * A many-tiles conv makes U per call the first time and keeps it from its second call on, if
     * the backend's budget holds it: every call gives the same bits; a budget too small keeps
     * nothing; a few-tiles conv never keeps U; one conv run on images of both tilings keeps each U.
     */
    @Test
    void convsKeepTheirUFromTheSecondCallWithinTheBudget() {
        Random r = new Random(11);
        int cin = 24, cout = 40;
        float[] wt = new float[cout * cin * 9], b = new float[cout];
        for (int i = 0; i < wt.length; i++) wt[i] = Float.float16ToFloat(Float.floatToFloat16((float) (r.nextGaussian() / Math.sqrt(9 * cin))));
        for (int i = 0; i < cout; i++) b[i] = (float) r.nextGaussian();
        Gemm.Packed packed = new Gemm.Packed(PAR, wt, cout, 9 * cin, b);
        long u = Winograd.transformedBytes(packed, cin, Winograd.Tiling.F4X2), u2 = Winograd.transformedBytes(packed, cin, Winograd.Tiling.F2X2);
        assertEquals(u, u2 * 3 / 2);
        float[] many = new float[30 * 26 * cin], few = new float[8 * 8 * cin]; // 195 and 16 F(2x2) tiles: F(4x2), few tiles
        for (int i = 0; i < many.length; i++) many[i] = (float) r.nextGaussian();
        for (int i = 0; i < few.length; i++) few[i] = many[i];
        for (long budget : new long[]{u, u - 1}) {
            CpuBackend be = new CpuBackend(CpuBackend.cores(), 0, budget);
            ConvWeights cw = be.convWeights(wt, cout, cin, 3, 3, b);
            float[] first = conv(be, cw, many, 30, 26);
            assertEquals(0, be.winogradKeptBytes(), "nothing is kept on the first call");
            float[] second = conv(be, cw, many, 30, 26), third = conv(be, cw, many, 30, 26);
            assertEquals(budget >= u ? u : 0, be.winogradKeptBytes(), "budget " + budget + " of " + u);
            assertArrayEquals(first, second);
            assertArrayEquals(first, third);
            assertArrayEquals(first, run(new CpuBackend(CpuBackend.cores(), 0, 0), many, wt, b, new int[]{1, 30, 26, cin, cout}), "as a backend that keeps nothing");
        }
        CpuBackend be = new CpuBackend(CpuBackend.cores(), 0, Long.MAX_VALUE);
        ConvWeights cw = be.convWeights(wt, cout, cin, 3, 3, b);
        for (int i = 0; i < 3; i++) conv(be, cw, few, 8, 8);
        assertEquals(0, be.winogradKeptBytes(), "the few-tiles path streams U");
        Tensor twoSmall = be.tensor(java.util.Arrays.copyOf(many, 2 * 16 * 16 * cin), 2, 16, 16, cin); // 128 F(2x2) tiles: many
        float[] small = be.toHost(be.conv2d(twoSmall, cw, 1, Padding.same(1)));
        for (int i = 0; i < 2; i++) assertArrayEquals(small, be.toHost(be.conv2d(twoSmall, cw, 1, Padding.same(1))));
        assertEquals(u2, be.winogradKeptBytes(), "F(2x2) U kept");
        float[] first = conv(be, cw, many, 30, 26);
        for (int i = 0; i < 2; i++) assertArrayEquals(first, conv(be, cw, many, 30, 26));
        assertEquals(u2 + u, be.winogradKeptBytes(), "both tilings' U kept");
        assertArrayEquals(small, be.toHost(be.conv2d(twoSmall, cw, 1, Padding.same(1))), "the F(2x2) U still used for its images");
    }

    /**
     * F(4x2): U made per call (panels split over tasks, input channels in slices) gives the bits
     * of a product with U made by the formula, scalar and pair by pair, for fp32, fp16 and bf16
     * weights; and a batch gives each image the bits it gets alone (the tiling depends on the
     * image's size, not the batch).
     */
    @Test
    void tallTilesMakeUAsTheFormulaAndStayBatchInvariant() {
        Random r = new Random(13);
        int[][] shapes = {{1, 22, 20, 300, 70}, {2, 25, 17, 40, 33}, {3, 33, 31, 19, 21}}; // n, h, w, cin, cout
        float[][] buffers = new float[Winograd.MAX_POSITIONS][7];
        for (int[] s : shapes) {
            int n = s[0], h = s[1], w = s[2], cin = s[3], cout = s[4];
            assertEquals(Winograd.Tiling.F4X2, Winograd.Tiling.of(h, w));
            for (String kind : new String[]{"fp32", "fp16", "bf16"}) {
                float[] x = new float[n * h * w * cin], wt = weightsOfKind(r, cout * 9 * cin, cin, kind), b = new float[cout];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int i = 0; i < cout; i++) b[i] = (float) r.nextGaussian();
                Gemm.Packed direct = new Gemm.Packed(PAR, wt, cout, 9 * cin, b);
                assertEquals(kind.equals("bf16"), direct.bf16, kind);
                float[] ref = new float[n * h * w * cout], perCall = new float[n * h * w * cout];
                java.util.Arrays.fill(ref, Float.NaN); // every element must be written
                Winograd.convTransformed(PAR, x, n, h, w, cin, formulaU(direct, cout, cin, Winograd.Tiling.F4X2), cout, direct.bias, ref);
                for (float v : ref) assertTrue(Float.isFinite(v));
                Winograd.convTransformed(PAR, x, n, h, w, cin, Winograd.transformWeights(PAR, direct, cin, buffers, Winograd.Tiling.F4X2), cout,
                        direct.bias, perCall);
                assertArrayEquals(ref, perCall, java.util.Arrays.toString(s) + " " + kind + " U per call");
                int image = h * w * cin, out = h * w * cout;
                for (int i = 0; i < n && n > 1; i++) {
                    float[] alone = new float[out];
                    Winograd.convTransformed(PAR, java.util.Arrays.copyOfRange(x, i * image, (i + 1) * image), 1, h, w, cin,
                            formulaU(direct, cout, cin, Winograd.Tiling.F4X2), cout, direct.bias, alone);
                    assertArrayEquals(java.util.Arrays.copyOfRange(ref, i * out, (i + 1) * out), alone, java.util.Arrays.toString(s) + " image " + i);
                }
            }
        }
    }

    private static float[] conv(Backend be, ConvWeights cw, float[] x, int h, int w) {
        return be.toHost(be.conv2d(be.tensor(x, 1, h, w, cw.inChannels()), cw, 1, Padding.same(1)));
    }

    /**
     * U = G g G^T for every (out, in) pair, written out as the formula, from the direct conv's packed
     * [out, (ky, kx, in)] weight: position 4i + j = (G g G2^T)[i][j], G = G2 (4 x 3) for F(2x2) or
     * G6 (6 x 3: rows g0 / 2, (g0 + g1 + g2) / 6, ..., g2 / 2) for F(4x2).
     */
    static Gemm.Packed[] formulaU(Gemm.Packed direct, int cout, int cin, Winograd.Tiling tiling) {
        int rows = tiling.positions / 4;
        float[][] u = new float[tiling.positions][cout * cin];
        float[] g = new float[9], gg = new float[3 * rows];
        for (int co = 0; co < cout; co++) {
            int p = co / Gemm.NR, j = co % Gemm.NR, base = p * direct.k * Gemm.NR;
            for (int ci = 0; ci < cin; ci++) {
                for (int t = 0; t < 9; t++) g[t] = direct.at(base + (t * cin + ci) * Gemm.NR + j);
                for (int c = 0; c < 3; c++) { // G g: rows x 3
                    float g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
                    if (tiling == Winograd.Tiling.F2X2) {
                        gg[c] = g0;
                        gg[3 + c] = 0.5f * (g0 + g1 + g2);
                        gg[6 + c] = 0.5f * (g0 - g1 + g2);
                        gg[9 + c] = g2;
                    } else {
                        gg[c] = g0 * 0.5f;
                        gg[3 + c] = (g0 + g1 + g2) * (1f / 6);
                        gg[6 + c] = (g1 - g0 - g2) * (1f / 6);
                        gg[9 + c] = -(g0 * (16f / 15) + g1 * (8f / 15) + g2 * (4f / 15));
                        gg[12 + c] = g0 * (1f / 30) - g1 * (1f / 15) + g2 * (2f / 15);
                        gg[15 + c] = g2 * 0.5f;
                    }
                }
                for (int r = 0; r < rows; r++) { // (G g) G2^T: rows x 4
                    float a0 = gg[r * 3], a1 = gg[r * 3 + 1], a2 = gg[r * 3 + 2];
                    int at = co * cin + ci;
                    u[r * 4][at] = a0;
                    u[r * 4 + 1][at] = 0.5f * (a0 + a1 + a2);
                    u[r * 4 + 2][at] = 0.5f * (a0 - a1 + a2);
                    u[r * 4 + 3][at] = a2;
                }
            }
        }
        Gemm.Packed[] out = new Gemm.Packed[tiling.positions];
        for (int i = 0; i < tiling.positions; i++) out[i] = new Gemm.Packed(PAR, u[i], cout, cin, null);
        return out;
    }

    /** A conv weight of {@code count} values scaled for {@code cin} inputs, exact in fp32, fp16 or bf16 ("bf16": one value outside fp16's range, so it packs as bf16). */
    static float[] weightsOfKind(Random r, int count, int cin, String kind) {
        float[] wt = new float[count];
        for (int i = 0; i < count; i++) {
            float v = (float) (r.nextGaussian() / Math.sqrt(9 * cin));
            wt[i] = switch (kind) {
                case "fp16" -> Float.float16ToFloat(Float.floatToFloat16(v));
                case "bf16" -> Float.intBitsToFloat(Float.floatToRawIntBits(v) & 0xffff0000);
                default -> v;
            };
        }
        // bf16 values of this size are fp16 values too; one outside fp16's range makes the weight bf16-only
        if (kind.equals("bf16")) wt[0] = Float.intBitsToFloat(Float.floatToRawIntBits(1e-20f) & 0xffff0000);
        return wt;
    }

    static float[] run(Backend be, float[] x, float[] wt, float[] b, int[] s) {
        ConvWeights cw = be.convWeights(wt, s[4], s[3], 3, 3, b);
        return be.toHost(be.conv2d(be.tensor(x, s[0], s[1], s[2], s[3]), cw, 1, Padding.same(1)));
    }

    static double[] reference(float[] x, float[] wt, float[] b, int n, int h, int w, int cin, int cout) {
        double[] y = new double[n * h * w * cout];
        for (int bi = 0; bi < n; bi++)
            for (int oy = 0; oy < h; oy++)
                for (int ox = 0; ox < w; ox++)
                    for (int co = 0; co < cout; co++) {
                        double acc = b[co];
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = oy + ky - 1, ix = ox + kx - 1;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                for (int ci = 0; ci < cin; ci++)
                                    acc += (double) x[((bi * h + iy) * w + ix) * cin + ci] * wt[((co * cin + ci) * 3 + ky) * 3 + kx];
                            }
                        y[((bi * h + oy) * w + ox) * cout + co] = acc;
                    }
        return y;
    }

    static double maxErr(double[] ref, float[] got) {
        double m = 0;
        for (int i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i] - got[i]));
        return m;
    }
}
