package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;

import java.util.function.Function;

/**
 * 3x3 stride-1 "same" convolution by Winograd: input tiles are transformed (V = B^T d B), each
 * transform position becomes an independent GEMM against transformed weights (U = G g G^T, made
 * from the layer's 9-tap weight), and outputs are transformed back (Y = A^T M A). Tiles are
 * processed in blocks, one block per task, so the transformed data of a block stays in cache.
 * Two tilings ({@link Tiling}): F(2x2, 3x3), 16 multiplies per 2x2 output tile and (in, out) pair
 * instead of 36, and on larger images F(4x2, 3x3), 24 per 4x2 tile instead of 72. Which one a conv
 * uses depends on the image's height and width only, never on the batch, so results stay batch invariant.
 */
final class Winograd {
    /** Positions of the F(2x2, 3x3) tiling (the few-tiles path's). */
    static final int POSITIONS = Tiling.F2X2.positions;
    /** The most positions of any tiling. */
    static final int MAX_POSITIONS = Tiling.F4X2.positions;
    private static final int TILE_BLOCK = 96;
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[2][0]);

    /**
     * F(2x2, 3x3), and F(4x2, 3x3): 4 output rows by 2 columns from a 6 x 4 input tile, a 6-point
     * transform down the rows (interpolation points 0, 1, -1, 1/2, -2 and infinity, with B^T's rows
     * scaled to integers) times the 2x2 tiling's 4-point one across. A quarter fewer products than
     * F(2x2) for an error as small (WinogradTest); F(4x4)'s error is an order of magnitude larger.
     */
    enum Tiling {
        F2X2(2), F4X2(4);
        /** Output rows of one tile (its columns are 2 either way). */
        final int rows;
        /** Transform positions: the (rows + 2) x 4 input tile. */
        final int positions;

        Tiling(int rows) {
            this.rows = rows;
            this.positions = (rows + 2) * 4;
        }

        /** F(4x2) where even one image has more F(2x2) tiles than a block (so the few-tiles path never applies), else F(2x2). */
        static Tiling of(int h, int w) {
            return (long) ((h + 1) / 2) * ((w + 1) / 2) > TILE_BLOCK ? F4X2 : F2X2;
        }
    }

    private Winograd() {
    }

    /**
     * y [n, h, w, cout] = conv3x3(x [n, h, w, cin], padding 1) + bias, from the direct conv's packed
     * [out, (ky, kx, in)] weight; every element of y is written. With many tiles the products use
     * the U that {@code keptU} gives when the caller keeps this layer's ({@link #transformWeights};
     * asked only on that path), else, on null, U is made for the call into buffers the calling
     * thread keeps (they grow to the largest layer's U):
     * 16 or 24 fp32 positions are 3.6 or 5.3 times a 2-byte 9-tap weight's memory, so a layer used
     * once (a single -f run) should not keep them, and making them costs 10-25% of a many-tiles conv.
     */
    static void conv(Parallel par, float[] x, int n, int h, int w, int cin, Gemm.Packed direct, Function<Tiling, Gemm.Packed[]> keptU,
                     int cout, float[] bias, float[] y) {
        if (fewTiles(n, h, w)) {
            convFewTiles(par, x, n, h, w, cin, direct, cout, bias, y);
            return;
        }
        Tiling tiling = Tiling.of(h, w);
        Gemm.Packed[] u = keptU.apply(tiling);
        convTransformed(par, x, n, h, w, cin, u != null ? u : transformWeights(par, direct, cin, U_BUFFERS.get(), tiling), cout, bias, y);
    }

    /** Bytes of the U that {@link #transformWeights} makes for this weight and tiling. */
    static long transformedBytes(Gemm.Packed direct, int cin, Tiling tiling) {
        return (long) tiling.positions * direct.panels * Gemm.NR * cin * Float.BYTES;
    }

    private static final ThreadLocal<float[][]> U_BUFFERS = ThreadLocal.withInitial(() -> new float[MAX_POSITIONS][0]);

    /**
     * U = G g G^T of every (out, in) pair for the tiling: position i's as a packed fp32 [cout, cin]
     * weight over {@code into[i]} (an array too small is replaced), a panel per task, one
     * input-channel slice at a time ({@link #transformPanelSlice}).
     */
    static Gemm.Packed[] transformWeights(Parallel par, Gemm.Packed direct, int cin, float[][] into, Tiling tiling) {
        int nr = Gemm.NR, size = Math.multiplyExact(direct.panels * nr, cin), positions = tiling.positions;
        for (int i = 0; i < positions; i++) grown(into, i, size);
        int step = sliceStep(cin);
        par.forEach(direct.panels, p -> {
            float[][] scratch = transformScratch(step);
            float[] g = scratch[0], u = scratch[1];
            for (int c0 = 0; c0 < cin; c0 += step) {
                int kc = Math.min(step, cin - c0);
                transformPanelSlice(direct, cin, p, c0, kc, g, u, tiling);
                for (int pos = 0; pos < positions; pos++)
                    System.arraycopy(u, pos * sliceStride(kc), into[pos], (p * cin + c0) * nr, kc * nr);
            }
        });
        Gemm.Packed[] out = new Gemm.Packed[positions];
        for (int i = 0; i < positions; i++) out[i] = Gemm.Packed.ofPanels(direct.n, cin, into[i]);
        return out;
    }

    /** The many-tiles convolution with U given, one position's [cout, cin] weight per element of u (16: F(2x2), 24: F(4x2)). */
    static void convTransformed(Parallel par, float[] x, int n, int h, int w, int cin, Gemm.Packed[] u, int cout, float[] bias, float[] y) {
        Tiling tiling = u.length == Tiling.F2X2.positions ? Tiling.F2X2 : Tiling.F4X2;
        int positions = tiling.positions, th = (h + tiling.rows - 1) / tiling.rows, tw = (w + 1) / 2, tiles = n * th * tw;
        // even blocks of at most TILE_BLOCK tiles, a multiple of the core count of them so no core idles at the end
        int least = (tiles + TILE_BLOCK - 1) / TILE_BLOCK;
        int blocks = Math.min(tiles, (least + par.threads() - 1) / par.threads() * par.threads());
        par.forEach(blocks, blk -> {
            int t0 = (int) ((long) tiles * blk / blocks), tb = (int) ((long) tiles * (blk + 1) / blocks) - t0;
            float[][] scratch = SCRATCH.get();
            float[] v = grown(scratch, 0, positions * TILE_BLOCK * cin), m = grown(scratch, 1, positions * TILE_BLOCK * cout);
            for (int i = 0; i < tb; i++) {
                if (tiling == Tiling.F2X2) inputTile(x, h, w, cin, th, tw, t0 + i, v, i, tb);
                else inputTile4x2(x, h, w, cin, th, tw, t0 + i, v, i, tb);
            }
            for (int pos = 0; pos < positions; pos++)
                Gemm.multiplySerial(tb, Gemm.dense(v, pos * tb * cin, cin), u[pos], m, pos * tb * cout, cout, false);
            for (int i = 0; i < tb; i++) {
                if (tiling == Tiling.F2X2) outputTile(m, i, tb, cout, cout, bias, y, h, w, th, tw, t0 + i);
                else outputTile4x2(m, i, tb, cout, bias, y, h, w, th, tw, t0 + i);
            }
        });
    }

    /** Whether {@link #convFewTiles} is the faster way for this input: at most one tile block of tiles. */
    static boolean fewTiles(int n, int h, int w) {
        return (long) n * ((h + 1) / 2) * ((w + 1) / 2) <= TILE_BLOCK;
    }

    /**
     * The same convolution for an image of few tiles (an 8x8 or 16x16 latent). There a tile-block
     * task would read all of U, 16/9 x 2 the bytes of the fp16 3x3 weight, for a handful of tiles,
     * and each task read it again: the step was bound by memory. Here tasks split the output
     * channels instead, and each transforms its panels of the direct conv's packed weight (fp16 or
     * fp32) one input-channel slice at a time as it goes: the weight is read once per call and no
     * U is kept. U comes out bit for bit as {@link #transformWeights} makes it, and so the result as {@link #convTransformed}'s.
     */
    static void convFewTiles(Parallel par, float[] x, int n, int h, int w, int cin, Gemm.Packed direct, int cout, float[] bias, float[] y) {
        int th = (h + 1) / 2, tw = (w + 1) / 2, tiles = n * th * tw, rows = Gemm.groupedRows(tiles), ldm = direct.panels * Gemm.NR;
        float[][] buffers = FEW_TILES_BUFFERS.get();
        float[] v = grown(buffers, 0, POSITIONS * tiles * cin), m = grown(buffers, 1, POSITIONS * rows * ldm);
        par.forEach(tiles, t -> inputTile(x, h, w, cin, th, tw, t, v, t, tiles));
        Gemm.PackedRows[] vp = new Gemm.PackedRows[POSITIONS];
        par.forEach(POSITIONS, pos -> buffers[2 + pos] = (vp[pos] = Gemm.packRows(v, pos * tiles * cin, cin, 1, tiles, cin, buffers[2 + pos])).data());
        int step = sliceStep(cin), tasks = Math.min(direct.panels, 2 * par.threads());
        par.forEach(tasks, task -> {
            float[][] scratch = transformScratch(step);
            float[] g = scratch[0], u = scratch[1];
            for (int c0 = 0; c0 < cin; c0 += step) {
                int kc = Math.min(step, cin - c0);
                for (int p = direct.panels * task / tasks, p1 = direct.panels * (task + 1) / tasks; p < p1; p++) {
                    transformPanelSlice(direct, cin, p, c0, kc, g, u, Tiling.F2X2);
                    for (int pos = 0; pos < POSITIONS; pos++)
                        Gemm.multiplyPanel(vp[pos], c0, kc, u, pos * sliceStride(kc), m, pos * rows * ldm + p * Gemm.NR, ldm, c0 > 0);
                }
            }
        });
        par.forEach(tiles, t -> outputTile(m, t, rows, ldm, cout, bias, y, h, w, th, tw, t));
    }

    /**
     * The calling thread's {V, M, packed V of each position} for {@link #convFewTiles}, kept between
     * calls: made anew they were tens of MB per call to zero and collect.
     */
    private static final ThreadLocal<float[][]> FEW_TILES_BUFFERS = ThreadLocal.withInitial(() -> new float[2 + POSITIONS][0]);

    /** buffers[i], replaced by a new array first if it holds fewer than {@code size} floats. */
    private static float[] grown(float[][] buffers, int i, int size) {
        if (buffers[i].length < size) buffers[i] = new float[size];
        return buffers[i];
    }

    /** Input channels per slice of the weight transform: even slices of at most {@link Gemm#KC}. */
    private static int sliceStep(int cin) {
        int slices = (cin + Gemm.KC - 1) / Gemm.KC;
        return (cin + slices - 1) / slices;
    }

    /** This thread's {g, u} buffers for {@link #transformPanelSlice} of slices up to {@code step} channels. */
    private static float[][] transformScratch(int step) {
        float[][] scratch = SCRATCH.get();
        grown(scratch, 0, 9 * sliceStride(step));
        grown(scratch, 1, MAX_POSITIONS * sliceStride(step));
        return scratch;
    }

    /**
     * Floats between consecutive taps in g and positions in u: a slice plus 64, so the 9 and 16
     * streams of the transform do not all fall into one L1 set (with a 32 KiB stride they did,
     * and the transform took longer than the 16 products).
     */
    private static int sliceStride(int kc) {
        return kc * Gemm.NR + 64;
    }

    /**
     * U of panel p for input channels [c0, c0 + kc) in the tiling, position 4i + j (row i of G g,
     * column j of its product with G2^T) at u[(4i + j) x sliceStride]: the 9 taps' rows of the
     * packed weight widened into g (tap t at g[t x sliceStride]), then G g down each of the kernel's
     * 3 columns into positions 4i + column, then each row times G2^T across, in place, a vector of
     * output channels at a time, with the same operations in the same order for every element
     * (WinogradTest writes them out). G is G2 (4 x 3) for F(2x2), G6 for F(4x2).
     */
    private static void transformPanelSlice(Gemm.Packed direct, int cin, int p, int c0, int kc, float[] g, float[] u, Tiling tiling) {
        int nr = Gemm.NR, len = kc * nr, st = sliceStride(kc), gRows = tiling.rows + 2;
        boolean tall = tiling == Tiling.F4X2;
        // the 9 taps' slices, cin x NR apart, in one call
        direct.widen(p * direct.k * nr + c0 * nr, cin * nr, g, 0, st, len, 9, NativeGemm.get());
        for (int at = 0; at < len; at += L) { // one vector of output channels through both stages while it is in L1
            for (int c = 0; c < 3; c++) { // G g, column c: row i into position 4i + c for now
                FloatVector g0 = FloatVector.fromArray(S, g, c * st + at), g1 = FloatVector.fromArray(S, g, (3 + c) * st + at),
                        g2 = FloatVector.fromArray(S, g, (6 + c) * st + at);
                if (tall) {
                    g0.mul(0.5f).intoArray(u, c * st + at);
                    g0.add(g1).add(g2).mul(SIXTH).intoArray(u, (4 + c) * st + at);
                    g1.sub(g0).sub(g2).mul(SIXTH).intoArray(u, (8 + c) * st + at);
                    g0.mul(G3_0).add(g1.mul(G3_1)).add(g2.mul(G3_2)).neg().intoArray(u, (12 + c) * st + at);
                    g0.mul(G4_0).sub(g1.mul(G4_1)).add(g2.mul(G4_2)).intoArray(u, (16 + c) * st + at);
                    g2.mul(0.5f).intoArray(u, (20 + c) * st + at);
                } else {
                    g0.intoArray(u, c * st + at);
                    g0.add(g1).add(g2).mul(0.5f).intoArray(u, (4 + c) * st + at);
                    g0.sub(g1).add(g2).mul(0.5f).intoArray(u, (8 + c) * st + at);
                    g2.intoArray(u, (12 + c) * st + at);
                }
            }
            for (int r = 0; r < gRows; r++) { // (G g) G2^T, row r: its three values at positions 4r .. 4r + 2, its four results there
                FloatVector a0 = FloatVector.fromArray(S, u, (4 * r) * st + at), a1 = FloatVector.fromArray(S, u, (4 * r + 1) * st + at),
                        a2 = FloatVector.fromArray(S, u, (4 * r + 2) * st + at);
                a0.add(a1).add(a2).mul(0.5f).intoArray(u, (4 * r + 1) * st + at);
                a0.sub(a1).add(a2).mul(0.5f).intoArray(u, (4 * r + 2) * st + at);
                a2.intoArray(u, (4 * r + 3) * st + at);
            }
        }
    }

    /** G6's rows (the 6-point transform, B^T scaled to integers): g0 / 2, (g0 + g1 + g2) / 6, ..., g2 / 2. */
    private static final float SIXTH = 1f / 6, G3_0 = 16f / 15, G3_1 = 8f / 15, G3_2 = 4f / 15, G4_0 = 1f / 30, G4_1 = 1f / 15, G4_2 = 2f / 15;

    private static final jdk.incubator.vector.VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ThreadLocal<float[]> TILE = ThreadLocal.withInitial(() -> new float[MAX_POSITIONS * L]);

    /** Zero vectors are made here, not kept in a static: a branch that joins a static vector with a loaded one made the JIT box every load (0.4 GB per UNet step). */
    private static FloatVector load(float[] x, int at, int ci) {
        return at < 0 ? FloatVector.zero(S) : FloatVector.fromArray(S, x, at + ci);
    }

    /**
     * Where each value of a tile's input lies in x (-1: outside the image, read as zero): for output
     * tiles of {@code rows} x 2, the (rows + 2) x 4 input values from one row and column above-left, row by row.
     */
    private static int[] inputOffsets(int h, int w, int cin, int th, int tw, int tile, int rows) {
        int b = tile / (th * tw), rem = tile % (th * tw), y0 = rows * (rem / tw) - 1, x0 = 2 * (rem % tw) - 1;
        int[] at = new int[(rows + 2) * 4];
        for (int r = 0; r < rows + 2; r++)
            for (int c = 0; c < 4; c++) {
                int yy = y0 + r, xx = x0 + c;
                at[r * 4 + c] = yy < 0 || yy >= h || xx < 0 || xx >= w ? -1 : ((b * h + yy) * w + xx) * cin;
            }
        return at;
    }

    /**
     * V = B^T d B of one 4x4 input tile (zero outside the image) into v[pos][slot][c], a vector of
     * channels at a time; the channel tail uses the same adds and subtracts on scalars.
     */
    private static void inputTile(float[] x, int h, int w, int cin, int th, int tw, int tile, float[] v, int slot, int tb) {
        int[] at = inputOffsets(h, w, cin, th, tw, tile, 2);
        int stride = tb * cin, base = slot * cin, ci = 0;
        float[] t = TILE.get(); // B^T d of one channel vector, [row][col][lane]: no arrays of vectors (they would be heap objects)
        for (int bound = S.loopBound(cin); ci < bound; ci += L) {
            for (int c = 0; c < 4; c++) { // B^T d, one column at a time
                FloatVector d0 = load(x, at[c], ci), d1 = load(x, at[4 + c], ci), d2 = load(x, at[8 + c], ci), d3 = load(x, at[12 + c], ci);
                d0.sub(d2).intoArray(t, c * L);
                d1.add(d2).intoArray(t, (4 + c) * L);
                d2.sub(d1).intoArray(t, (8 + c) * L);
                d1.sub(d3).intoArray(t, (12 + c) * L);
            }
            for (int r = 0; r < 4; r++) { // (B^T d) B
                FloatVector e0 = FloatVector.fromArray(S, t, r * 4 * L), e1 = FloatVector.fromArray(S, t, (r * 4 + 1) * L),
                        e2 = FloatVector.fromArray(S, t, (r * 4 + 2) * L), e3 = FloatVector.fromArray(S, t, (r * 4 + 3) * L);
                e0.sub(e2).intoArray(v, (r * 4) * stride + base + ci);
                e1.add(e2).intoArray(v, (r * 4 + 1) * stride + base + ci);
                e2.sub(e1).intoArray(v, (r * 4 + 2) * stride + base + ci);
                e1.sub(e3).intoArray(v, (r * 4 + 3) * stride + base + ci);
            }
        }
        float[] e = new float[16];
        for (; ci < cin; ci++) {
            for (int i = 0; i < 16; i++) e[i] = at[i] < 0 ? 0f : x[at[i] + ci];
            for (int c = 0; c < 4; c++) {
                float d0 = e[c], d1 = e[4 + c], d2 = e[8 + c], d3 = e[12 + c];
                e[c] = d0 - d2;
                e[4 + c] = d1 + d2;
                e[8 + c] = d2 - d1;
                e[12 + c] = d1 - d3;
            }
            for (int r = 0; r < 4; r++) {
                float e0 = e[r * 4], e1 = e[r * 4 + 1], e2 = e[r * 4 + 2], e3 = e[r * 4 + 3];
                v[(r * 4) * stride + base + ci] = e0 - e2;
                v[(r * 4 + 1) * stride + base + ci] = e1 + e2;
                v[(r * 4 + 2) * stride + base + ci] = e2 - e1;
                v[(r * 4 + 3) * stride + base + ci] = e1 - e3;
            }
        }
    }

    /**
     * Y = A^T M A of one tile (+ bias), a vector of output channels at a time, written where it lies
     * inside the image; M is [position][tb][ldm].
     */
    private static void outputTile(float[] m, int slot, int tb, int ldm, int cout, float[] bias, float[] y, int h, int w, int th, int tw, int tile) {
        int b = tile / (th * tw), rem = tile % (th * tw), oy = 2 * (rem / tw), ox = 2 * (rem % tw);
        int stride = tb * ldm, base = slot * ldm, co = 0;
        boolean right = ox + 1 < w, below = oy + 1 < h;
        int p00 = ((b * h + oy) * w + ox) * cout, p01 = p00 + cout, p10 = p00 + w * cout, p11 = p10 + cout;
        float[] t = TILE.get(); // A^T M of one channel vector: rows 0 and 1, [row][col][lane]
        for (int bound = S.loopBound(cout); co < bound; co += L) {
            for (int j = 0; j < 4; j++) { // A^T M, one column at a time
                FloatVector m0 = FloatVector.fromArray(S, m, j * stride + base + co), m1 = FloatVector.fromArray(S, m, (4 + j) * stride + base + co),
                        m2 = FloatVector.fromArray(S, m, (8 + j) * stride + base + co), m3 = FloatVector.fromArray(S, m, (12 + j) * stride + base + co);
                m0.add(m1).add(m2).intoArray(t, j * L);
                m1.sub(m2).sub(m3).intoArray(t, (4 + j) * L);
            }
            FloatVector bv = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, co);
            for (int r = 0; r < 2 && (r == 0 || below); r++) { // (A^T M) A, output rows oy and oy + 1
                FloatVector a0 = FloatVector.fromArray(S, t, r * 4 * L), a1 = FloatVector.fromArray(S, t, (r * 4 + 1) * L),
                        a2 = FloatVector.fromArray(S, t, (r * 4 + 2) * L), a3 = FloatVector.fromArray(S, t, (r * 4 + 3) * L);
                int left = r == 0 ? p00 : p10;
                a0.add(a1).add(a2).add(bv).intoArray(y, left + co);
                if (right) a1.sub(a2).sub(a3).add(bv).intoArray(y, left + cout + co);
            }
        }
        float[] sm = new float[16], s0 = new float[4], s1 = new float[4];
        for (; co < cout; co++) {
            for (int i = 0; i < 16; i++) sm[i] = m[i * stride + base + co];
            float bv = bias == null ? 0f : bias[co];
            for (int j = 0; j < 4; j++) {
                s0[j] = sm[j] + sm[4 + j] + sm[8 + j];
                s1[j] = sm[4 + j] - sm[8 + j] - sm[12 + j];
            }
            y[p00 + co] = s0[0] + s0[1] + s0[2] + bv;
            if (right) y[p01 + co] = s0[1] - s0[2] - s0[3] + bv;
            if (below) {
                y[p10 + co] = s1[0] + s1[1] + s1[2] + bv;
                if (right) y[p11 + co] = s1[1] - s1[2] - s1[3] + bv;
            }
        }
    }

    /**
     * V = B^T d B of one 6 x 4 input tile of the F(4x2) tiling (zero outside the image) into
     * v[pos][slot][c], pos = 4i + j: the 4-point transform across each of the 6 rows, then the
     * 6-point one (B^T's rows times 1, 2, 2, 1, 2, 2: integers) down each of the 4 columns.
     */
    private static void inputTile4x2(float[] x, int h, int w, int cin, int th, int tw, int tile, float[] v, int slot, int tb) {
        int[] at = inputOffsets(h, w, cin, th, tw, tile, 4);
        int stride = tb * cin, base = slot * cin, ci = 0;
        float[] t = TILE.get(); // d B of one channel vector, [row][col][lane]
        for (int bound = S.loopBound(cin); ci < bound; ci += L) {
            for (int r = 0; r < 6; r++) { // d B, one row at a time
                FloatVector d0 = load(x, at[4 * r], ci), d1 = load(x, at[4 * r + 1], ci), d2 = load(x, at[4 * r + 2], ci), d3 = load(x, at[4 * r + 3], ci);
                d0.sub(d2).intoArray(t, (4 * r) * L);
                d1.add(d2).intoArray(t, (4 * r + 1) * L);
                d2.sub(d1).intoArray(t, (4 * r + 2) * L);
                d1.sub(d3).intoArray(t, (4 * r + 3) * L);
            }
            for (int c = 0; c < 4; c++) { // B^T (d B), one column at a time
                FloatVector e0 = FloatVector.fromArray(S, t, c * L), e1 = FloatVector.fromArray(S, t, (4 + c) * L),
                        e2 = FloatVector.fromArray(S, t, (8 + c) * L), e3 = FloatVector.fromArray(S, t, (12 + c) * L),
                        e4 = FloatVector.fromArray(S, t, (16 + c) * L), e5 = FloatVector.fromArray(S, t, (20 + c) * L);
                int o = base + ci + c * stride;
                e0.add(e4).mul(2f).add(e3.sub(e1).mul(3f)).sub(e2.mul(4f)).intoArray(v, o);
                e3.mul(5f).add(e2).add(e4.sub(e1).mul(2f)).intoArray(v, o + 4 * stride);
                e1.add(e4).mul(2f).add(e3).sub(e2.mul(5f)).intoArray(v, o + 8 * stride);
                e3.sub(e1).mul(2f).add(e4).sub(e2).intoArray(v, o + 12 * stride);
                e4.sub(e2).mul(2f).add(e1).sub(e3).intoArray(v, o + 16 * stride);
                e1.add(e5).mul(2f).add(e4.sub(e2).mul(3f)).sub(e3.mul(4f)).intoArray(v, o + 20 * stride);
            }
        }
        float[] e = new float[24];
        for (; ci < cin; ci++) {
            for (int i = 0; i < 24; i++) e[i] = at[i] < 0 ? 0f : x[at[i] + ci];
            for (int r = 0; r < 6; r++) {
                float d0 = e[4 * r], d1 = e[4 * r + 1], d2 = e[4 * r + 2], d3 = e[4 * r + 3];
                e[4 * r] = d0 - d2;
                e[4 * r + 1] = d1 + d2;
                e[4 * r + 2] = d2 - d1;
                e[4 * r + 3] = d1 - d3;
            }
            for (int c = 0; c < 4; c++) {
                float e0 = e[c], e1 = e[4 + c], e2 = e[8 + c], e3 = e[12 + c], e4 = e[16 + c], e5 = e[20 + c];
                int o = base + ci + c * stride;
                v[o] = (e0 + e4) * 2f + (e3 - e1) * 3f - e2 * 4f;
                v[o + 4 * stride] = e3 * 5f + e2 + (e4 - e1) * 2f;
                v[o + 8 * stride] = (e1 + e4) * 2f + e3 - e2 * 5f;
                v[o + 12 * stride] = (e3 - e1) * 2f + e4 - e2;
                v[o + 16 * stride] = (e4 - e2) * 2f + e1 - e3;
                v[o + 20 * stride] = (e1 + e5) * 2f + (e4 - e2) * 3f - e3 * 4f;
            }
        }
    }

    /**
     * Y = A^T M A of one F(4x2) tile (+ bias): the 6-point transform down each of M's 4 columns
     * (rows 0, 1, 1/2, 1/4, 1/8 ... of A^T), then the 2-point one across each output row, written
     * where it lies inside the image; M is [position][tb][ldm] with ldm = cout.
     */
    private static void outputTile4x2(float[] m, int slot, int tb, int cout, float[] bias, float[] y, int h, int w, int th, int tw, int tile) {
        int b = tile / (th * tw), rem = tile % (th * tw), oy = 4 * (rem / tw), ox = 2 * (rem % tw);
        int stride = tb * cout, base = slot * cout, co = 0, rows = Math.min(4, h - oy);
        boolean right = ox + 1 < w;
        int p0 = ((b * h + oy) * w + ox) * cout, rowStep = w * cout;
        float[] t = TILE.get(); // A^T M of one channel vector, [row][col][lane]
        for (int bound = S.loopBound(cout); co < bound; co += L) {
            for (int j = 0; j < 4; j++) { // A^T M, one column at a time
                int o = base + co + j * stride;
                FloatVector m0 = FloatVector.fromArray(S, m, o), m1 = FloatVector.fromArray(S, m, o + 4 * stride),
                        m2 = FloatVector.fromArray(S, m, o + 8 * stride), m3 = FloatVector.fromArray(S, m, o + 12 * stride),
                        m4 = FloatVector.fromArray(S, m, o + 16 * stride), m5 = FloatVector.fromArray(S, m, o + 20 * stride);
                FloatVector sum = m1.add(m2), diff = m1.sub(m2);
                m0.add(sum).add(m3).add(m4).intoArray(t, j * L);
                diff.add(m3.mul(0.5f)).sub(m4.mul(2f)).intoArray(t, (4 + j) * L);
                sum.add(m3.mul(0.25f)).add(m4.mul(4f)).intoArray(t, (8 + j) * L);
                diff.add(m3.mul(0.125f)).sub(m4.mul(8f)).add(m5).intoArray(t, (12 + j) * L);
            }
            FloatVector bv = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, co);
            for (int r = 0; r < rows; r++) { // (A^T M) A, output row oy + r
                FloatVector a0 = FloatVector.fromArray(S, t, r * 4 * L), a1 = FloatVector.fromArray(S, t, (r * 4 + 1) * L),
                        a2 = FloatVector.fromArray(S, t, (r * 4 + 2) * L), a3 = FloatVector.fromArray(S, t, (r * 4 + 3) * L);
                int left = p0 + r * rowStep + co;
                a0.add(a1).add(a2).add(bv).intoArray(y, left);
                if (right) a1.sub(a2).sub(a3).add(bv).intoArray(y, left + cout);
            }
        }
        float[] sm = new float[24], s = new float[16];
        for (; co < cout; co++) {
            for (int i = 0; i < 24; i++) sm[i] = m[i * stride + base + co];
            float bv = bias == null ? 0f : bias[co];
            for (int j = 0; j < 4; j++) {
                float m0 = sm[j], m1 = sm[4 + j], m2 = sm[8 + j], m3 = sm[12 + j], m4 = sm[16 + j], m5 = sm[20 + j], sum = m1 + m2, diff = m1 - m2;
                s[j] = m0 + sum + m3 + m4;
                s[4 + j] = diff + m3 * 0.5f - m4 * 2f;
                s[8 + j] = sum + m3 * 0.25f + m4 * 4f;
                s[12 + j] = diff + m3 * 0.125f - m4 * 8f + m5;
            }
            for (int r = 0; r < rows; r++) {
                int left = p0 + r * rowStep + co;
                y[left] = s[4 * r] + s[4 * r + 1] + s[4 * r + 2] + bv;
                if (right) y[left + cout] = s[4 * r + 1] - s[4 * r + 2] - s[4 * r + 3] + bv;
            }
        }
    }
}
