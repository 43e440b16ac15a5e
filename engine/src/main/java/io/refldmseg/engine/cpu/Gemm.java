package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * C[M, N] (+)= A[M, K] B[N, K]^T (+ bias), fp32, with B packed once into panels of NR columns
 * ({@link Packed}) and an MR x NR register-blocked Vector API micro-kernel (NR = two vectors: 32
 * floats on AVX-512, 16 on AVX2). Blocking: a K slice of a run of B panels stays in L2 while the
 * task's rows pass over it, each B micro-panel stays in L1 while a block of rows passes over it.
 * A comes from an {@link ARows} source, either the activation itself (linear, 1x1 conv) or an
 * im2col tile of one block and K slice built on the fly (3x3 and patch convs), so no full im2col
 * matrix exists; with the 12-row kernel each block of A is first packed into 12-row panels.
 * Ragged edges run the kernels on zero-padded copies of A and scratch tiles of C (no masked vector ops).
 * Where {@link NativeGemm} can run (256-bit vectors on an AVX2 + FMA x86-64 Linux), every 6-row
 * block and packed-rows product goes to its C kernel instead, edges included, with the same results.
 * Where the CPU has AMX-BF16, {@link #multiply} with A in place runs on the tile unit instead
 * ({@link #multiplyAmx}): fp32 accuracy and batch invariant, but not the other kernels' bits.
 */
final class Gemm {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    static final int NR = 2 * L;
    /** Shorts and ints with as many lanes as {@link #S} (for widening bf16 panels). */
    private static final VectorSpecies<Short> HALF = VectorSpecies.of(short.class, VectorShape.forBitSize(S.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> INT = VectorSpecies.of(int.class, S.vectorShape());
    /**
     * Rows per micro-kernel: 12 where vectors are 512 bits (AVX-512 has 32 vector registers: 24
     * accumulators + 2 of B + 1 of A; from packed panels it beats the 6-row kernel by 16-33%,
     * 170-179 vs 128-150 GFLOP/s hot on one core), 6 otherwise (AVX2's 16 registers: 12 + 2 + 1;
     * 12 rows there spill, 85 -> 55 GFLOP/s).
     */
    static final int MR = S.vectorBitSize() >= 512 ? 12 : 6;
    /** Rows of the small kernel ({@link #kernel6}): MR on AVX2, the last short row group on AVX-512. */
    private static final int SMALL_MR = 6;
    /** The deepest K slice: its B micro-panel (KC x NR floats, 32 KiB with AVX-512) stays in a 48 KiB L1 (384 measured 10-15% slower). */
    static final int KC = 256;
    /**
     * A K up to this is one slice: at K = 320 (the UNet's 320-channel linears) two slices of 160
     * wrote every C tile twice (1024x2560x320: 172 -> 203-209 GFLOP/s), deeper K stays at KC.
     */
    static final int MAX_SINGLE_SLICE = KC + KC / 4;
    /**
     * The K slice of {@link #multiply}'s blocks: KC, but twice that where the native AVX-512 block
     * runs: it keeps a 12-row A panel (24 KiB at 512) in L1 while the B panels stream from L2, so a
     * deeper slice costs no L1 misses and passes over C fewer times.
     */
    private static final int BLOCK_KC = MR == 12 && NativeGemm.get() != null ? 2 * KC : KC;
    private static final int BLOCK_MAX_SINGLE_SLICE = BLOCK_KC + BLOCK_KC / 4;
    /** Rows of A packed at a time (their K slice stays in L2 while every panel of the run passes over it). */
    static final int MC = 192;
    /** Fewest rows a row task gets; fewer rows are split by panels instead. */
    private static final int MIN_TASK_ROWS = 96;
    /** Panel tasks per core for a single row task over an in-place A (see {@link #multiply}). */
    private static final int PANEL_TASKS_PER_THREAD = 4;

    private Gemm() {
    }

    /**
     * B^T packed as [panel][k][NR] (zero padded past N), and the bias padded likewise. A weight
     * whose every value is exactly an fp16 number (an fp16 checkpoint) is kept in fp16, one whose
     * every value is exactly a bf16 number (a bf16 checkpoint, e.g. the DeepSpeed UNet, with values
     * fp16 cannot hold) in bf16: half the memory, widened one K slice at a time inside the GEMM.
     * Any other weight stays fp32, so packing never rounds.
     */
    static final class Packed {
        final int n, k, panels;
        /** fp32 panels, or null when {@link #half} holds them. */
        final float[] data;
        /** 16-bit panels (fp16 bits, or bf16 bits when {@link #bf16}), or null when {@link #data} holds them. */
        final short[] half;
        /** {@link #half} holds bfloat16 (the top 16 bits of an fp32), not IEEE fp16. */
        final boolean bf16;
        final float[] bias;

        /** {@code b} is [n, k] row-major (a PyTorch linear weight). */
        Packed(Parallel par, float[] b, int n, int k, float[] bias) {
            if ((long) n * k != b.length) throw new IllegalArgumentException("weight has " + b.length + " values, not " + n + "x" + k);
            if (bias != null && bias.length != n) throw new IllegalArgumentException("bias has " + bias.length + " values, not " + n);
            this.n = n;
            this.k = k;
            this.panels = (n + NR - 1) / NR;
            int size = Math.multiplyExact(panels * NR, k);
            boolean fp16 = exactIn(par, b, false), brain = !fp16 && exactIn(par, b, true), narrow = fp16 || brain;
            this.bf16 = brain;
            this.data = narrow ? null : new float[size];
            this.half = narrow ? new short[size] : null;
            par.forEach(panels, p -> {
                int base = p * k * NR;
                for (int j = 0; j < NR && p * NR + j < n; j++) {
                    int row = (p * NR + j) * k;
                    if (fp16) for (int kk = 0; kk < k; kk++) half[base + kk * NR + j] = Float.floatToFloat16(b[row + kk]);
                    else if (brain) for (int kk = 0; kk < k; kk++) half[base + kk * NR + j] = (short) (Float.floatToRawIntBits(b[row + kk]) >>> 16);
                    else for (int kk = 0; kk < k; kk++) data[base + kk * NR + j] = b[row + kk];
                }
            });
            if (bias == null) {
                this.bias = null;
            } else {
                this.bias = new float[panels * NR];
                System.arraycopy(bias, 0, this.bias, 0, n);
            }
        }

        /** fp32 panels, no bias, of B [n][k] with row stride ld starting at src[off] (attention's K as the B of Q K^T). */
        static Packed ofRows(float[] src, int off, int ld, int n, int k) {
            float[] dst = new float[(n + NR - 1) / NR * NR * k];
            for (int j = 0; j < n; j++) {
                int base = j / NR * k * NR + j % NR;
                for (int kk = 0, from = off + j * ld; kk < k; kk++) dst[base + kk * NR] = src[from + kk];
            }
            return new Packed(n, k, dst);
        }

        /** fp32 panels, no bias, of B = S^T for S [k][n] with row stride ld starting at src[off] (attention's V as the B of P V): runs of NR copied. */
        static Packed ofColumns(float[] src, int off, int ld, int k, int n) {
            int panels = (n + NR - 1) / NR;
            float[] dst = new float[panels * NR * k];
            for (int p = 0; p < panels; p++) {
                int width = Math.min(NR, n - p * NR);
                for (int kk = 0; kk < k; kk++) System.arraycopy(src, off + kk * ld + p * NR, dst, (p * k + kk) * NR, width);
            }
            return new Packed(n, k, dst);
        }

        /** A view of fp32 panels already in packed layout ([panel][k][NR], at least n rounded up to NR x k values), no bias. */
        static Packed ofPanels(int n, int k, float[] panels) {
            return new Packed(n, k, panels);
        }

        private Packed(int n, int k, float[] panels) {
            this.n = n;
            this.k = k;
            this.panels = (n + NR - 1) / NR;
            if (panels.length < (long) this.panels * NR * k) throw new IllegalArgumentException("panels hold " + panels.length + " values, not " + n + "x" + k);
            this.data = panels;
            this.half = null;
            this.bf16 = false;
            this.bias = null;
        }

        /** Packed element {@code i} as fp32. */
        float at(int i) {
            return half == null ? data[i] : bf16 ? Float.intBitsToFloat(half[i] << 16) : Float.float16ToFloat(half[i]);
        }

        /** count runs of len packed elements, run s from from + s stride, as fp32 into dst[to + s dStride...]; natively where {@code kernel} is not null. */
        void widen(int from, int stride, float[] dst, int to, int dStride, int len, int count, NativeGemm kernel) {
            if (half != null && kernel != null) kernel.widen(half, from, stride, dst, to, dStride, len, count, bf16);
            else for (int s = 0; s < count; s++) widenInJava(from + s * stride, dst, to + s * dStride, len);
        }

        private void widenInJava(int from, float[] dst, int to, int len) {
            if (half == null) System.arraycopy(data, from, dst, to, len);
            else if (bf16) widenBf16(half, from, dst, to, len);
            else for (int i = 0; i < len; i++) dst[to + i] = Float.float16ToFloat(half[from + i]);
        }

        /**
         * bf16 bits are the top half of an fp32: sign-extend to int and shift left 16, a vector at a
         * time (C2 does not vectorise the scalar loop as it does fp16's conversion).
         */
        private static void widenBf16(short[] half, int from, float[] dst, int to, int len) {
            int i = 0;
            for (int end = len - len % L; i < end; i += L)
                ((IntVector) ShortVector.fromArray(HALF, half, from + i).convertShape(VectorOperators.S2I, INT, 0))
                        .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, to + i);
            for (; i < len; i++) dst[to + i] = Float.intBitsToFloat(half[from + i] << 16);
        }

        /** Every value survives a round trip through fp16 (or, {@code brain}, bf16: its low 16 bits are zero). */
        private static boolean exactIn(Parallel par, float[] b, boolean brain) {
            int chunks = Math.max(1, Math.min(par.threads() * 4, b.length / 65536));
            boolean[] inexact = new boolean[chunks];
            par.forEach(chunks, c -> {
                for (int i = (int) ((long) b.length * c / chunks), end = (int) ((long) b.length * (c + 1) / chunks); i < end; i++) {
                    int bits = Float.floatToRawIntBits(b[i]);
                    if (brain ? (bits & 0xffff) != 0 : Float.floatToRawIntBits(Float.float16ToFloat(Float.floatToFloat16(b[i]))) != bits) {
                        inexact[c] = true;
                        return;
                    }
                }
            });
            for (boolean x : inexact) if (x) return false;
            return true;
        }
    }

    /**
     * Where A comes from: {@code slice(m0, mc, k0, kc)} returns rows [m0, m0 + mc) x columns
     * [k0, k0 + kc) as a block whose element (r, k) is at {@code offset + r * lda + k}.
     */
    interface ARows {
        Block slice(int m0, int mc, int k0, int kc);

        /** Whether {@link #slice} only points into an existing matrix (no copy per call, unlike an im2col). */
        default boolean inPlace() {
            return false;
        }
    }

    record Block(float[] data, int offset, int lda) {
    }

    /** A is a plain row-major matrix with row stride {@code lda}. */
    static ARows dense(float[] a, int offset, int lda) {
        return new Dense(a, offset, lda);
    }

    private record Dense(float[] a, int offset, int lda) implements ARows {
        @Override
        public Block slice(int m0, int mc, int k0, int kc) {
            return new Block(a, offset + m0 * lda + k0, lda);
        }

        @Override
        public boolean inPlace() {
            return true;
        }
    }

    /**
     * With 12-row kernels: copies the row groups of a block (mc rows x kc) that the 12-row kernel
     * takes (all but a last group of at most 6 rows) into panels of 12 rows, element (r, k) at
     * {@code (r / 12) * kc * 12 + k * 12 + r % 12}, rows past mc zero, so the kernel reads a panel
     * with one moving index. Whole panels move L columns at a time with gathers (index map
     * {@code gather}, made for this block's stride), 2.8x a scalar copy.
     */
    private static void pack(Block blk, int mc, int kc, float[] dst, int[] gather) {
        float[] a = blk.data();
        int lda = blk.lda(), full = mc / MR, vectorK = kc - kc % L;
        for (int i = 0; i < MR * L; i++) gather[i] = (i % MR) * lda + i / MR;
        for (int g = 0; g < full; g++) {
            int src = blk.offset() + g * MR * lda, at = g * MR * kc;
            for (int k = 0; k < vectorK; k += L)
                for (int j = 0; j < MR; j++) FloatVector.fromArray(S, a, src + k, gather, j * L).intoArray(dst, at + k * MR + j * L);
            for (int r = 0; r < MR; r++)
                for (int k = vectorK; k < kc; k++) dst[at + k * MR + r] = a[src + r * lda + k];
        }
        if (mc - full * MR > SMALL_MR) {
            int at = full * MR * kc;
            for (int r = 0; r < MR; r++) {
                int row = full * MR + r, src = blk.offset() + row * lda;
                for (int k = 0; k < kc; k++) dst[at + k * MR + r] = row < mc ? a[src + k] : 0f;
            }
        }
    }

    /**
     * A whole A operand (rows x k) in the order the micro-kernels read it, for a caller that
     * multiplies it by many single panels of B ({@link #multiplyPanel}): groups of MR rows, each a
     * 12-row panel ([k][12]) on AVX-512 or 6 rows as they are ([6][k]); on AVX-512 a last group of
     * at most 6 rows takes the 6-row layout. The group starting at row r begins at r x k; rows past
     * {@code rows} are zero up to {@link #groupedRows}.
     */
    record PackedRows(float[] data, int rows, int k) {
    }

    /** Rows the groups of a {@link PackedRows} of {@code rows} rows cover (its product tiles have this many). */
    static int groupedRows(int rows) {
        int full = rows / MR * MR, tail = rows - full;
        return full + (tail == 0 ? 0 : groupSize(tail));
    }

    /** Rows of the next group of a {@link PackedRows} when {@code rowsLeft} of its grouped rows remain: 12 (a panel) or 6 (as they are). */
    private static int groupSize(int rowsLeft) {
        return MR == 12 && rowsLeft > SMALL_MR ? MR : SMALL_MR;
    }

    /** Element (r, kk) of A is {@code src[off + r * rowStride + kk * kStride]}; {@code dst} is reused when large enough. */
    static PackedRows packRows(float[] src, int off, int rowStride, int kStride, int rows, int k, float[] dst) {
        int grouped = groupedRows(rows);
        float[] data = dst != null && dst.length >= grouped * k ? dst : new float[grouped * k];
        if (MR == SMALL_MR && (kStride == 1 || rowStride == 1)) { // every group is [6][k]: element (r, kk) at r * k + kk
            if (kStride == 1) { // rows of contiguous k (attention's K): a copy per row
                for (int r = 0; r < rows; r++) System.arraycopy(src, off + r * rowStride, data, r * k, k);
            } else { // k of contiguous rows (V^T): each source run once, into every row
                for (int kk = 0; kk < k; kk++)
                    for (int r = 0, from = off + kk * kStride, to = kk; r < rows; r++, to += k) data[to] = src[from + r];
            }
            Arrays.fill(data, rows * k, grouped * k, 0f);
            return new PackedRows(data, rows, k);
        }
        for (int row = 0; row < grouped; ) {
            int groupRows = groupSize(grouped - row), real = Math.min(groupRows, rows - row);
            int at = row * k, first = off + row * rowStride;
            if (groupRows > SMALL_MR) { // a panel: [k][12]
                for (int kk = 0; kk < k; kk++) {
                    int from = first + kk * kStride, to = at + kk * groupRows;
                    for (int r = 0; r < real; r++) data[to + r] = src[from + r * rowStride];
                    for (int r = real; r < groupRows; r++) data[to + r] = 0f;
                }
            } else {
                if (kStride > rowStride) { // a transposed source (V^T): the group's rows sit side by side, so walk k once
                    for (int kk = 0; kk < k; kk++)
                        for (int r = 0, from = first + kk * kStride; r < real; r++) data[at + r * k + kk] = src[from + r * rowStride];
                } else {
                    for (int r = 0; r < real; r++)
                        for (int kk = 0, from = first + r * rowStride; kk < k; kk++) data[at + r * k + kk] = src[from + kk * kStride];
                }
                Arrays.fill(data, at + real * k, at + groupRows * k, 0f);
            }
            row += groupRows;
        }
        return new PackedRows(data, rows, k);
    }

    /**
     * C (groupedRows(a.rows) rows x NR, row stride ldc) = or += the K slice [k0, k0 + kc) of A
     * times one B panel, element (kk, j) at {@code b[bOff + (kk - k0) * NR + j]}.
     */
    static void multiplyPanel(PackedRows a, int k0, int kc, float[] b, int bOff, float[] c, int cOff, int ldc, boolean accumulate) {
        multiplyPanel(a, k0, kc, b, bOff, c, cOff, ldc, accumulate, NativeGemm.get());
    }

    /** {@link #multiplyPanel} with the given native kernel (null: the Vector API kernels). */
    static void multiplyPanel(PackedRows a, int k0, int kc, float[] b, int bOff, float[] c, int cOff, int ldc, boolean accumulate,
                              NativeGemm kernel) {
        int grouped = groupedRows(a.rows());
        if (kernel != null && MR == SMALL_MR) { // every group is 6 rows as they are, [6][k]
            kernel.block(a.data(), k0, a.k(), grouped, b, bOff, 0, null, 0, 0, false, 1, NR, c, null, cOff, ldc, kc, accumulate, null, 0);
            return;
        }
        if (kernel != null) { // 12-row panels, then at most one group of 6 rows as they are
            int rows6 = grouped % MR == 0 ? 0 : SMALL_MR, rows12 = grouped - rows6;
            kernel.block512(a.data(), k0 * MR, MR * a.k(), rows12, a.data(), k0, a.k(), rows6,
                    b, bOff, 0, null, 0, 0, false, 1, NR, c, null, cOff, ldc, kc, accumulate, null, 0);
            return;
        }
        for (int row = 0, groupRows; row < grouped; row += groupRows) {
            groupRows = groupSize(grouped - row);
            int at = row * a.k();
            if (groupRows > SMALL_MR) kernel12(a.data(), at + k0 * groupRows, b, bOff, c, cOff + row * ldc, ldc, kc, accumulate, null, 0);
            else kernel6(a.data(), at + k0, a.k(), b, bOff, c, cOff + row * ldc, ldc, kc, accumulate, null, 0);
        }
    }

    /** Bytes of B (one K slice of a run of panels) that a task keeps in L2 while its rows pass over it. */
    private static final int B_SLICE_BYTES = 1 << 20;

    private static final ThreadLocal<float[]> EDGE_C = ThreadLocal.withInitial(() -> new float[MR * NR]);
    private static final ThreadLocal<float[]> EDGE_A = ThreadLocal.withInitial(() -> new float[SMALL_MR * BLOCK_MAX_SINGLE_SLICE]);
    private static final ThreadLocal<float[]> PACKED_A = ThreadLocal.withInitial(() -> new float[MC * BLOCK_MAX_SINGLE_SLICE]);
    private static final ThreadLocal<int[]> GATHER = ThreadLocal.withInitial(() -> new int[MR * L]);

    /**
     * C (rows m, row stride ldc, starting at cOff) = A B^T + bias, or += A B^T when
     * {@code accumulate} (then the bias is not added). Work is cut into rowTasks x panelTasks tasks
     * ({@link #split}): every row task reads (and widens) all of its panels of B, every panel task
     * packs (or reads) all of its rows of A, so the split that copies least, rowTasks x N +
     * panelTasks x M, is near rowTasks = sqrt(tasks x M / N) (1024x2560x320: 174-182 -> 193-197
     * GFLOP/s, 257x4096x1024: 210-226 -> 244-246), with at least MIN_TASK_ROWS rows per row task.
     */
    static void multiply(Parallel par, int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate) {
        multiply(par, m, a, b, c, cOff, ldc, accumulate, null);
    }

    /**
     * {@link #multiply}, and with a {@code residual} (laid out as C, not with {@code accumulate}):
     * C = residual + A B^T + bias. The native kernels start each tile's accumulators from residual +
     * bias in the first K slice, so the sum costs no pass over C of its own; with the Vector API
     * kernels each task first sets its tile of C to residual + bias and they accumulate onto it
     * (the same bits either way).
     */
    static void multiply(Parallel par, int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate, float[] residual) {
        multiply(par, m, a, b, c, cOff, ldc, accumulate, residual, amx() && b.n >= AMX_MIN_COLUMNS);
    }

    /**
     * Fewest output columns for which a product with A in place goes to AMX: splitting A into its
     * three bf16 parts costs the same per row whatever N, and with few columns it outweighs the
     * faster products (the VAE decoder's 1x1 conv 256 -> 128 channels at 256 x 256 was slower on AMX).
     */
    static final int AMX_MIN_COLUMNS = 256;

    /** Whether {@link #multiply} runs its products with A in place on AMX here (for B of at least {@link #AMX_MIN_COLUMNS} columns). */
    static boolean amx() {
        NativeGemm kernel = NativeGemm.get();
        return kernel != null && kernel.amx();
    }

    /**
     * {@link #multiply}, on AMX where {@code amx} (and {@link #amx()}) holds and A is in place, else on the
     * AVX-512 / AVX2 / Vector API kernels (whose bits the serial product gives).
     */
    static void multiply(Parallel par, int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate, float[] residual, boolean amx) {
        if (m == 0) return;
        if (residual != null && accumulate) throw new IllegalArgumentException("a residual starts C; it cannot also accumulate");
        NativeGemm kernel = NativeGemm.get();
        if (amx && kernel != null && kernel.amx() && a.inPlace()) { // every product with A in place, whatever m: results stay batch invariant
            multiplyAmx(par, m, a.slice(0, m, 0, b.k), b, c, cOff, ldc, accumulate, residual, kernel);
            return;
        }
        int groups = (m + MR - 1) / MR;
        Split split = split(par.threads(), m, b, a.inPlace() && (MR == SMALL_MR || kernel != null), MR == 12 && kernel != null);
        int rowTasks = split.rowTasks(), panelTasks = split.panelTasks();
        par.forEach(rowTasks * panelTasks, t -> {
            int rt = t / panelTasks, pt = t % panelTasks;
            int g0 = (int) ((long) groups * rt / rowTasks), g1 = (int) ((long) groups * (rt + 1) / rowTasks);
            int p0 = b.panels * pt / panelTasks, p1 = b.panels * (pt + 1) / panelTasks;
            int m0 = g0 * MR, m1 = Math.min(m, g1 * MR);
            run(a, m0, m1, b, p0, p1, c, cOff, ldc, accumulate, residual, kernel);
        });
    }

    /**
     * The K slice of the AMX path where K is deeper than {@link #AMX_SINGLE_SLICE}: a multiple of its 32-value
     * chunks, fixed so a row's result depends on K only.
     */
    private static final int AMX_KC = 512;
    /** A K up to this is one slice: each slice ends by storing every C tile, and the tile unit waits for that. */
    private static final int AMX_SINGLE_SLICE = 1024;
    /** Bytes of split A (a K slice of a chunk of rows: 6 bytes a value) that stay in L2 while the task's panels pass over them. */
    private static final int AMX_A_CHUNK_BYTES = 1 << 20;
    /**
     * Tasks per core of the AMX path: fewer than the AVX-512 block's four, since every panel task reads
     * the whole K slice of the split A and the tile unit outruns that stream; one a core balances worse.
     */
    private static final int AMX_TASKS_PER_THREAD = 2;
    /** Rows of the AMX kernel's blocks (two row tiles); row tasks start at multiples of it. */
    private static final int AMX_ROWS = 32;
    private static final ThreadLocal<MemorySegment> AMX_A = new ThreadLocal<>();
    private static final ThreadLocal<MemorySegment> AMX_B = new ThreadLocal<>();

    /** Rows of A the AMX path splits at a time (its split of 6 bytes a value is scratch kept per calling thread). */
    private static final int AMX_BAND_ROWS = 1024;

    /**
     * {@link #multiply} on AMX, a band of at most AMX_BAND_ROWS rows at a time: the band's A is split into
     * bf16 parts once, in parallel by row tiles; then each task runs its panels one K slice at a time (one
     * slice up to AMX_SINGLE_SLICE, else AMX_KC), each over its rows in chunks whose split A stays in L2.
     * Rows are cut as for the native AVX-512 block, panels into AMX_TASKS_PER_THREAD tasks a core.
     */
    private static void multiplyAmx(Parallel par, int m, Block a, Packed b, float[] c, int cOff, int ldc, boolean accumulate,
                                    float[] residual, NativeGemm kernel) {
        for (int band = 0; band < m; band += AMX_BAND_ROWS) {
            int rows = Math.min(AMX_BAND_ROWS, m - band);
            multiplyAmxBand(par, rows, new Block(a.data(), a.offset() + band * a.lda(), a.lda()), b, c, cOff + band * ldc, ldc, accumulate,
                    residual, kernel);
        }
    }

    private static void multiplyAmxBand(Parallel par, int m, Block a, Packed b, float[] c, int cOff, int ldc, boolean accumulate,
                                        float[] residual, NativeGemm kernel) {
        int chunks = (b.k + 31) / 32, rowTiles = (m + 15) / 16, tileValues = chunks * 3 * NativeGemm.AMX_TILE;
        MemorySegment split = NativeGemm.amxScratch(AMX_A, NativeGemm.amxSplitSize(m, b.k));
        int splitTasks = Math.min(rowTiles, 4 * par.threads());
        par.forEach(splitTasks, t -> {
            int t0 = rowTiles * t / splitTasks, t1 = rowTiles * (t + 1) / splitTasks, r0 = t0 * 16, r1 = Math.min(m, t1 * 16);
            kernel.amxSplitA(a.data(), a.offset() + r0 * a.lda(), a.lda(), r1 - r0, b.k, split, (long) t0 * tileValues);
        });
        int blocks = (m + AMX_ROWS - 1) / AMX_ROWS, parts = NativeGemm.amxParts(b.half == null, b.bf16);
        int step = b.k <= AMX_SINGLE_SLICE ? b.k : AMX_KC;
        int rowChunk = Math.max(AMX_ROWS, AMX_A_CHUNK_BYTES / (6 * step) / AMX_ROWS * AMX_ROWS);
        int rowTasks = Math.min(split(par.threads(), m, b, true, true).rowTasks(), blocks);
        int panelTasks = Math.min(b.panels, Math.max(1, AMX_TASKS_PER_THREAD * par.threads() / rowTasks));
        par.forEach(rowTasks * panelTasks, t -> {
            int rt = t / panelTasks, pt = t % panelTasks;
            int r0 = blocks * rt / rowTasks * AMX_ROWS, r1 = Math.min(m, blocks * (rt + 1) / rowTasks * AMX_ROWS);
            int p0 = b.panels * pt / panelTasks, p1 = b.panels * (pt + 1) / panelTasks;
            if (r0 >= r1 || p0 >= p1) return;
            int lastCols = Math.min(NR, b.n - (p1 - 1) * NR);
            for (int k0 = 0; k0 < b.k; k0 += step) {
                int kc = Math.min(step, b.k - k0);
                MemorySegment packed = NativeGemm.amxScratch(AMX_B, NativeGemm.amxPackedSize(kc, parts));
                boolean start = k0 == 0 && !accumulate;
                for (int q0 = r0; q0 < r1; q0 += rowChunk) {
                    int q1 = Math.min(r1, q0 + rowChunk);
                    kernel.amxGemm(split, (long) q0 / 16 * tileValues, q1 - q0, chunks, k0 / 32, b.half, b.half == null ? b.data : null,
                            p0 * b.k * NR + k0 * NR, b.k * NR, b.bf16, kc, p1 - p0, lastCols, c, residual, cOff + q0 * ldc + p0 * NR, ldc, start,
                            b.bias, p0 * NR, packed);
                }
            }
        });
    }

    /** How {@link #multiply} cuts its work: rowTasks x panelTasks tasks. */
    record Split(int rowTasks, int panelTasks) {
    }

    /** Values of A and B that rowTasks x (tasks / rowTasks) tasks read: each row task all of B, each panel task all of A. */
    private static double reads(int rowTasks, int tasks, int m, int n) {
        return (double) rowTasks * n + (double) tasks / rowTasks * m;
    }

    /**
     * The split of an m-row product by b among {@code threads} cores. {@code aInPlace}: the kernels
     * read A in place (the 6-row ones, the native AVX-512 one), so no task packs A and the cores
     * share several smaller tasks (one core running slower, a busy neighbour, then does not leave
     * the other waiting at the end of every call). {@code rowGroupsOuter}: the native AVX-512 block,
     * whose tasks stream their rows of A and panels of B from memory: of the splits into
     * PANEL_TASKS_PER_THREAD tasks per core it takes the one that reads least, rowTasks x N +
     * panelTasks x M (256x640x5760: 1 x 8 -> 2 x 4; the 6-row kernels, which keep A in L2, were
     * slower so at that shape).
     */
    static Split split(int threads, int m, Packed b, boolean aInPlace, boolean rowGroupsOuter) {
        int maxRowTasks = m / MIN_TASK_ROWS;
        if (aInPlace && rowGroupsOuter) {
            int tasks = PANEL_TASKS_PER_THREAD * threads, rowTasks = 1;
            for (int r = 2; r <= Math.min(tasks, maxRowTasks); r++)
                if (tasks % r == 0 && reads(r, tasks, m, b.n) < reads(rowTasks, tasks, m, b.n)) rowTasks = r;
            // all panels per row task unless more row tasks read clearly less (the tower's 257 rows: even, so as before)
            if (reads(rowTasks, tasks, m, b.n) > 0.9 * reads(1, tasks, m, b.n)) rowTasks = 1;
            return new Split(rowTasks, Math.min(b.panels, tasks / rowTasks));
        }
        int target = 2 * threads, leastCopying = (int) Math.round(Math.sqrt((double) target * m / b.n));
        int rowTasks = Math.max(1, Math.min(leastCopying, Math.min(target, maxRowTasks)));
        // with one row task every panel task packs (or im2cols) all of A: one task per core, not two
        // (8x8 and 4x4 convs, K = 11520: 3-4% faster)
        return new Split(rowTasks, Math.min(b.panels, rowTasks > 1 ? (target + rowTasks - 1) / rowTasks
                : aInPlace ? PANEL_TASKS_PER_THREAD * threads : threads));
    }

    /** The same product on the calling thread only (for callers that parallelise at a coarser grain). */
    static void multiplySerial(int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate) {
        multiplySerial(m, a, b, c, cOff, ldc, accumulate, NativeGemm.get());
    }

    /** {@link #multiplySerial} with the given native kernel (null: the Vector API kernels). */
    static void multiplySerial(int m, ARows a, Packed b, float[] c, int cOff, int ldc, boolean accumulate, NativeGemm kernel) {
        if (m > 0) run(a, 0, m, b, 0, b.panels, c, cOff, ldc, accumulate, null, kernel);
    }

    /**
     * Rows [m0, m1) times panels [p0, p1). Panels go in runs whose K slice fits {@link
     * #B_SLICE_BYTES}; K is one slice up to {@link #BLOCK_MAX_SINGLE_SLICE}, else even slices of at
     * most BLOCK_KC; rows go in blocks of MC so a block's A slice stays in L2 while each B micro-panel (L1)
     * passes over the block's row groups (the native AVX-512 block turns this round: each row group's A
     * stays in L1 while the run's panels stream from L2).
     */
    private static void run(ARows a, int m0, int m1, Packed b, int p0, int p1, float[] c, int cOff, int ldc, boolean accumulate,
                            float[] residual, NativeGemm kernel) {
        int slices = b.k <= BLOCK_MAX_SINGLE_SLICE ? 1 : (b.k + BLOCK_KC - 1) / BLOCK_KC, step = (b.k + slices - 1) / slices; // even slices: no thin tail
        int runPanels = Math.max(1, B_SLICE_BYTES / (step * NR * Float.BYTES));
        int runs = (p1 - p0 + runPanels - 1) / runPanels;
        for (int r = 0; r < runs; r++) {
            int q0 = p0 + (p1 - p0) * r / runs, q1 = p0 + (p1 - p0) * (r + 1) / runs;
            for (int k0 = 0; k0 < b.k; k0 += step) {
                int kc = Math.min(step, b.k - k0);
                // the native kernels start their tiles from residual + bias themselves; the Vector API ones from C, set here
                boolean acc = accumulate || k0 > 0 || residual != null && kernel == null;
                float[] res = k0 == 0 && kernel != null ? residual : null;
                if (residual != null && kernel == null && k0 == 0) startFromResidual(residual, b.bias, m0, m1, q0 * NR, Math.min(b.n, q1 * NR), c, cOff, ldc);
                float[] bData = b.data;
                int bBase = q0 * b.k * NR + k0 * NR, bStride = b.k * NR;
                short[] half = null; // 16-bit B that the native block's first row block widens into bData as it multiplies it
                int halfOff = bBase, halfStride = bStride;
                if (b.half != null) { // this K slice of the run's panels is widened once; every row block reuses it
                    if (kernel != null) {
                        bData = wideScratch((q1 - q0) * kc * NR);
                        half = b.half;
                    } else {
                        bData = widened(b, q0, q1, k0, kc);
                    }
                    bBase = 0;
                    bStride = kc * NR;
                }
                for (int mb = m0; mb < m1; mb += MC) {
                    int mc = Math.min(MC, m1 - mb);
                    Block blk = a.slice(mb, mc, k0, kc);
                    if (kernel != null && MR == SMALL_MR) { // the native kernel takes the whole block, ragged rows and columns too
                        kernel.block(blk.data(), blk.offset(), blk.lda(), mc, bData, bBase, bStride, mb == m0 ? half : null, halfOff, halfStride, b.bf16, q1 - q0, Math.min(NR, b.n - (q1 - 1) * NR),
                                c, res, cOff + mb * ldc + q0 * NR, ldc, kc, acc, acc ? null : b.bias, q0 * NR);
                        continue;
                    }
                    if (kernel != null) { // AVX-512: every row read in place (packing A cost more than the kernel saves)
                        kernel.block512(null, 0, 0, mc, blk.data(), blk.offset(), blk.lda(), 0,
                                bData, bBase, bStride, mb == m0 ? half : null, halfOff, halfStride, b.bf16, q1 - q0, Math.min(NR, b.n - (q1 - 1) * NR),
                                c, res, cOff + mb * ldc + q0 * NR, ldc, kc, acc, acc ? null : b.bias, q0 * NR);
                        continue;
                    }
                    float[] packed = null;
                    if (MR == 12) pack(blk, mc, kc, packed = PACKED_A.get(), GATHER.get());
                    block(blk, packed, mc, kc, bData, bBase, bStride, b, q0, q1, c, cOff + mb * ldc, ldc, acc);
                }
            }
        }
    }

    /** C rows [m0, m1), columns [n0, n1) = residual (same layout) + bias (null: none). */
    private static void startFromResidual(float[] residual, float[] bias, int m0, int m1, int n0, int n1, float[] c, int cOff, int ldc) {
        for (int r = m0; r < m1; r++) {
            int at = cOff + r * ldc;
            if (bias == null) System.arraycopy(residual, at + n0, c, at + n0, n1 - n0);
            else for (int j = n0; j < n1; j++) c[at + j] = residual[at + j] + bias[j];
        }
    }

    private static final ThreadLocal<float[]> WIDE_B = ThreadLocal.withInitial(() -> new float[0]);

    /** This thread's buffer for widened B, at least {@code size} floats. */
    private static float[] wideScratch(int size) {
        float[] w = WIDE_B.get();
        if (w.length < size) {
            w = new float[size];
            WIDE_B.set(w);
        }
        return w;
    }

    /**
     * The 16-bit slice [k0, k0 + kc) of panels [q0, q1) as fp32, laid out [panel - q0][kc][NR],
     * widened in Java: the Vector API path, which the native blocks (they widen as they go) are
     * tested against.
     */
    private static float[] widened(Packed b, int q0, int q1, int k0, int kc) {
        int len = kc * NR;
        float[] w = wideScratch((q1 - q0) * len);
        b.widen(q0 * b.k * NR + k0 * NR, b.k * NR, w, 0, len, len, q1 - q0, null);
        return w;
    }

    /**
     * One A slice (mc rows x kc; {@code packed} holds its 12-row panels, or is null with 6-row
     * kernels) times a K slice of panels [p0, p1), panel p's at bData[bBase + (p - p0) * bStride].
     * A row group of at most 6 rows takes the 6-row kernel even where MR is 12 (a 4x4 latent's 16
     * pixels then cost 18 rows of work, not 24).
     */
    private static void block(Block blk, float[] packed, int mc, int kc, float[] bData, int bBase, int bStride, Packed b,
                              int p0, int p1, float[] c, int cOff, int ldc, boolean acc) {
        int groups = (mc + MR - 1) / MR, tail = mc - (groups - 1) * MR;
        float[] bias = acc ? null : b.bias, edgeA = null;
        if (tail < SMALL_MR) { // a last group of fewer than 6 rows: the 6-row kernel on a zero-padded copy, made once per slice
            edgeA = EDGE_A.get();
            Arrays.fill(edgeA, 0, SMALL_MR * kc, 0f);
            for (int r = 0; r < tail; r++) System.arraycopy(blk.data(), blk.offset() + ((groups - 1) * MR + r) * blk.lda(), edgeA, r * kc, kc);
        }
        for (int p = p0; p < p1; p++) {
            int cols = Math.min(NR, b.n - p * NR), bOff = bBase + (p - p0) * bStride;
            for (int g = 0; g < groups; g++) {
                int rows = Math.min(MR, mc - g * MR), at = cOff + g * MR * ldc + p * NR;
                boolean twelve = rows > SMALL_MR, edge = rows < SMALL_MR;
                float[] a = edge ? edgeA : blk.data();
                int aOff = edge ? 0 : blk.offset() + g * MR * blk.lda(), lda = edge ? kc : blk.lda();
                float[] dst = c;
                int dstOff = at, ldd = ldc;
                if (rows != (twelve ? MR : SMALL_MR) || cols != NR) { // ragged columns or rows: the kernel writes a scratch tile of C
                    dst = EDGE_C.get();
                    dstOff = 0;
                    ldd = NR;
                    if (acc) for (int r = 0; r < rows; r++) System.arraycopy(c, at + r * ldc, dst, r * NR, cols);
                }
                if (twelve) kernel12(packed, g * MR * kc, bData, bOff, dst, dstOff, ldd, kc, acc, bias, p * NR);
                else kernel6(a, aOff, lda, bData, bOff, dst, dstOff, ldd, kc, acc, bias, p * NR);
                if (dst != c) for (int r = 0; r < rows; r++) System.arraycopy(dst, r * NR, c, at + r * ldc, cols);
            }
        }
    }

    /** The 12 x NR micro-kernel: 24 vector accumulators, one broadcast of A per row and k from a packed panel. */
    private static void kernel12(float[] a, int aOff, float[] bp, int bOff, float[] c, int cOff, int ldc,
                                int kc, boolean acc, float[] bias, int biasOff) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71, c80, c81, c90, c91, c10_0, c10_1, c11_0, c11_1;
        if (acc) {
            c00 = FloatVector.fromArray(S, c, cOff);
            c01 = FloatVector.fromArray(S, c, cOff + L);
            c10 = FloatVector.fromArray(S, c, cOff + ldc);
            c11 = FloatVector.fromArray(S, c, cOff + ldc + L);
            c20 = FloatVector.fromArray(S, c, cOff + 2 * ldc);
            c21 = FloatVector.fromArray(S, c, cOff + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, cOff + 3 * ldc);
            c31 = FloatVector.fromArray(S, c, cOff + 3 * ldc + L);
            c40 = FloatVector.fromArray(S, c, cOff + 4 * ldc);
            c41 = FloatVector.fromArray(S, c, cOff + 4 * ldc + L);
            c50 = FloatVector.fromArray(S, c, cOff + 5 * ldc);
            c51 = FloatVector.fromArray(S, c, cOff + 5 * ldc + L);
            c60 = FloatVector.fromArray(S, c, cOff + 6 * ldc);
            c61 = FloatVector.fromArray(S, c, cOff + 6 * ldc + L);
            c70 = FloatVector.fromArray(S, c, cOff + 7 * ldc);
            c71 = FloatVector.fromArray(S, c, cOff + 7 * ldc + L);
            c80 = FloatVector.fromArray(S, c, cOff + 8 * ldc);
            c81 = FloatVector.fromArray(S, c, cOff + 8 * ldc + L);
            c90 = FloatVector.fromArray(S, c, cOff + 9 * ldc);
            c91 = FloatVector.fromArray(S, c, cOff + 9 * ldc + L);
            c10_0 = FloatVector.fromArray(S, c, cOff + 10 * ldc);
            c10_1 = FloatVector.fromArray(S, c, cOff + 10 * ldc + L);
            c11_0 = FloatVector.fromArray(S, c, cOff + 11 * ldc);
            c11_1 = FloatVector.fromArray(S, c, cOff + 11 * ldc + L);
        } else {
            FloatVector b0 = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, biasOff);
            FloatVector b1 = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, biasOff + L);
            c00 = c10 = c20 = c30 = c40 = c50 = c60 = c70 = c80 = c90 = c10_0 = c11_0 = b0;
            c01 = c11 = c21 = c31 = c41 = c51 = c61 = c71 = c81 = c91 = c10_1 = c11_1 = b1;
        }
        for (int k = 0; k < kc; k++) {
            int ak = aOff + k * 12, bk = bOff + k * NR;
            FloatVector b0 = FloatVector.fromArray(S, bp, bk);
            FloatVector b1 = FloatVector.fromArray(S, bp, bk + L);
            FloatVector x0 = FloatVector.broadcast(S, a[ak]);
            c00 = b0.fma(x0, c00);
            c01 = b1.fma(x0, c01);
            FloatVector x1 = FloatVector.broadcast(S, a[ak + 1]);
            c10 = b0.fma(x1, c10);
            c11 = b1.fma(x1, c11);
            FloatVector x2 = FloatVector.broadcast(S, a[ak + 2]);
            c20 = b0.fma(x2, c20);
            c21 = b1.fma(x2, c21);
            FloatVector x3 = FloatVector.broadcast(S, a[ak + 3]);
            c30 = b0.fma(x3, c30);
            c31 = b1.fma(x3, c31);
            FloatVector x4 = FloatVector.broadcast(S, a[ak + 4]);
            c40 = b0.fma(x4, c40);
            c41 = b1.fma(x4, c41);
            FloatVector x5 = FloatVector.broadcast(S, a[ak + 5]);
            c50 = b0.fma(x5, c50);
            c51 = b1.fma(x5, c51);
            FloatVector x6 = FloatVector.broadcast(S, a[ak + 6]);
            c60 = b0.fma(x6, c60);
            c61 = b1.fma(x6, c61);
            FloatVector x7 = FloatVector.broadcast(S, a[ak + 7]);
            c70 = b0.fma(x7, c70);
            c71 = b1.fma(x7, c71);
            FloatVector x8 = FloatVector.broadcast(S, a[ak + 8]);
            c80 = b0.fma(x8, c80);
            c81 = b1.fma(x8, c81);
            FloatVector x9 = FloatVector.broadcast(S, a[ak + 9]);
            c90 = b0.fma(x9, c90);
            c91 = b1.fma(x9, c91);
            FloatVector x10 = FloatVector.broadcast(S, a[ak + 10]);
            c10_0 = b0.fma(x10, c10_0);
            c10_1 = b1.fma(x10, c10_1);
            FloatVector x11 = FloatVector.broadcast(S, a[ak + 11]);
            c11_0 = b0.fma(x11, c11_0);
            c11_1 = b1.fma(x11, c11_1);
        }
        c00.intoArray(c, cOff);
        c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc);
        c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc);
        c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc);
        c31.intoArray(c, cOff + 3 * ldc + L);
        c40.intoArray(c, cOff + 4 * ldc);
        c41.intoArray(c, cOff + 4 * ldc + L);
        c50.intoArray(c, cOff + 5 * ldc);
        c51.intoArray(c, cOff + 5 * ldc + L);
        c60.intoArray(c, cOff + 6 * ldc);
        c61.intoArray(c, cOff + 6 * ldc + L);
        c70.intoArray(c, cOff + 7 * ldc);
        c71.intoArray(c, cOff + 7 * ldc + L);
        c80.intoArray(c, cOff + 8 * ldc);
        c81.intoArray(c, cOff + 8 * ldc + L);
        c90.intoArray(c, cOff + 9 * ldc);
        c91.intoArray(c, cOff + 9 * ldc + L);
        c10_0.intoArray(c, cOff + 10 * ldc);
        c10_1.intoArray(c, cOff + 10 * ldc + L);
        c11_0.intoArray(c, cOff + 11 * ldc);
        c11_1.intoArray(c, cOff + 11 * ldc + L);
    }

    /**
     * The 6 x NR micro-kernel: 12 vector accumulators, one broadcast of A per row (stride lda) and
     * k. It reads A rows in place: on AVX2 the JIT spills two accumulators when the 6 rows come
     * from a packed panel (67 vs 96 GFLOP/s): with one A index it hoists four broadcasts ahead of
     * their FMAs, 18 live vectors for 16 registers, and reloads and stores the two every k; a
     * separate index per row keeps each broadcast next to its FMAs.
     */
    private static void kernel6(float[] a, int aOff, int lda, float[] bp, int bOff, float[] c, int cOff, int ldc,
                                int kc, boolean acc, float[] bias, int biasOff) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (acc) {
            c00 = FloatVector.fromArray(S, c, cOff);
            c01 = FloatVector.fromArray(S, c, cOff + L);
            c10 = FloatVector.fromArray(S, c, cOff + ldc);
            c11 = FloatVector.fromArray(S, c, cOff + ldc + L);
            c20 = FloatVector.fromArray(S, c, cOff + 2 * ldc);
            c21 = FloatVector.fromArray(S, c, cOff + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, cOff + 3 * ldc);
            c31 = FloatVector.fromArray(S, c, cOff + 3 * ldc + L);
            c40 = FloatVector.fromArray(S, c, cOff + 4 * ldc);
            c41 = FloatVector.fromArray(S, c, cOff + 4 * ldc + L);
            c50 = FloatVector.fromArray(S, c, cOff + 5 * ldc);
            c51 = FloatVector.fromArray(S, c, cOff + 5 * ldc + L);
        } else {
            FloatVector b0 = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, biasOff);
            FloatVector b1 = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, biasOff + L);
            c00 = c10 = c20 = c30 = c40 = c50 = b0;
            c01 = c11 = c21 = c31 = c41 = c51 = b1;
        }
        int a0 = aOff, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        for (int k = 0, bo = bOff; k < kc; k++, bo += NR) {
            FloatVector b0 = FloatVector.fromArray(S, bp, bo);
            FloatVector b1 = FloatVector.fromArray(S, bp, bo + L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + k]);
            c00 = b0.fma(x, c00);
            c01 = b1.fma(x, c01);
            x = FloatVector.broadcast(S, a[a1 + k]);
            c10 = b0.fma(x, c10);
            c11 = b1.fma(x, c11);
            x = FloatVector.broadcast(S, a[a2 + k]);
            c20 = b0.fma(x, c20);
            c21 = b1.fma(x, c21);
            x = FloatVector.broadcast(S, a[a3 + k]);
            c30 = b0.fma(x, c30);
            c31 = b1.fma(x, c31);
            x = FloatVector.broadcast(S, a[a4 + k]);
            c40 = b0.fma(x, c40);
            c41 = b1.fma(x, c41);
            x = FloatVector.broadcast(S, a[a5 + k]);
            c50 = b0.fma(x, c50);
            c51 = b1.fma(x, c51);
        }
        c00.intoArray(c, cOff);
        c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc);
        c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc);
        c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc);
        c31.intoArray(c, cOff + 3 * ldc + L);
        c40.intoArray(c, cOff + 4 * ldc);
        c41.intoArray(c, cOff + 4 * ldc + L);
        c50.intoArray(c, cOff + 5 * ldc);
        c51.intoArray(c, cOff + 5 * ldc + L);
    }
}
