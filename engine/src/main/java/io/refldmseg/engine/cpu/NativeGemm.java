package io.refldmseg.engine.cpu;

import jdk.incubator.vector.FloatVector;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Set;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The GEMM micro-kernels compiled from {@code kernels/src/main/c} (a resource of the kernels jar),
 * called through a critical FFM downcall straight on the JVM's arrays: the 6 x 16 AVX2 + FMA kernel
 * where the GEMM runs with 256-bit vectors (NR = 16), the AVX-512 kernels (12 x 32 tiles from A's
 * rows in place or from packed 12-row panels, shorter row groups too) where it runs with 512-bit
 * vectors (NR = 32). Each computes bit for bit what {@link Gemm}'s Vector API kernels compute; they exist because C2 compiles those kernels with a lea per A
 * row and no unrolling (unrolled by hand, C2 hoists every broadcast and spills), while gcc unrolls
 * the k loop with no spills. Used on x86-64 Linux with the matching CPU flags; elsewhere, or with
 * {@code -Drefldmseg.cpu.nativeKernels=false}, or when the build had no C compiler, the Vector API
 * kernels run and {@link #whyNot()} says why. Where the CPU also has AMX-BF16 and the OS grants the tile
 * state, the AMX kernels ({@code cpu_gemm_amx.c}: {@link #amxSplitA}, {@link #amxGemm}) are bound too
 * (unless {@code -Drefldmseg.cpu.amx=false}); {@link #amxWhyNot()} says why not.
 */
final class NativeGemm {
    static final String RESOURCE = "/io/refldmseg/kernels/linux-x86_64/librefldmseg_cpu_avx2.so";
    static final String PROPERTY = "refldmseg.cpu.nativeKernels";
    /** {@code -Drefldmseg.cpu.amx=false} keeps the GEMM off AMX where the CPU has it. */
    static final String AMX_PROPERTY = "refldmseg.cpu.amx";

    private static final NativeGemm INSTANCE;
    /** Why the native kernel does not run here, or null when it does. */
    private static final String WHY_NOT;

    static {
        NativeGemm kernel = null;
        String whyNot;
        try {
            whyNot = unusableBecause();
            if (whyNot == null) kernel = new NativeGemm(extract(), FloatVector.SPECIES_PREFERRED.vectorBitSize() == 512);
        } catch (IOException | RuntimeException e) {
            whyNot = "the native kernel did not load: " + e.getMessage();
        }
        INSTANCE = kernel;
        WHY_NOT = whyNot;
    }

    /** The AVX2 block (256-bit vectors) or null. */
    private final MethodHandle block;
    /** The AVX-512 block (512-bit vectors) or null. */
    private final MethodHandle block512;
    /** fp16 / bf16 slices widened to fp32, with the vector width of the block that runs. */
    private final MethodHandle widen;
    /** The AMX kernels (cpu_gemm_amx.c), or null where the CPU has no AMX, it is switched off, or the OS did not grant it. */
    private final MethodHandle amxSplitA, amxGemm;
    /** Why the AMX kernels do not run here, or null when they do. */
    private final String amxWhyNot;

    private NativeGemm(Path library, boolean wide) {
        SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
        String name = wide ? "refldmseg_avx512_block" : "refldmseg_avx2_block";
        MemorySegment fn = find(lookup, library, name);
        // (b, bOff, bStride, h, hOff, hStride, bf16, panels, lastCols, c, residual, cOff, ldc, kc, accumulate, bias, biasOff), after the A operands
        FunctionDescriptor bAndC = FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT,
                JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG);
        FunctionDescriptor descriptor = wide // (ap, apOff, apStride, rows12, a, aOff, lda, rows6) or (a, aOff, lda, rows)
                ? bAndC.insertArgumentLayouts(0, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT)
                : bAndC.insertArgumentLayouts(0, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT);
        MethodHandle handle = Linker.nativeLinker().downcallHandle(fn, descriptor, Linker.Option.critical(true));
        block = wide ? null : handle;
        block512 = wide ? handle : null;
        String widenName = wide ? "refldmseg_avx512_widen" : "refldmseg_avx2_widen";
        MemorySegment widenFn = find(lookup, library, widenName);
        // (h, hOff, hStride, dst, dOff, dStride, len, count, bf16)
        widen = Linker.nativeLinker().downcallHandle(widenFn, FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT), Linker.Option.critical(true));
        String amxWhy = wide ? amxUnusableBecause() : "AMX runs with 512-bit vectors only";
        MethodHandle split = null, gemm = null;
        if (amxWhy == null) {
            Linker linker = Linker.nativeLinker();
            MethodHandle enable = linker.downcallHandle(find(lookup, library, "refldmseg_amx_enable"), FunctionDescriptor.of(JAVA_INT));
            int granted;
            try {
                granted = (int) enable.invokeExact();
            } catch (Throwable e) {
                throw new IllegalStateException("AMX permission request failed", e);
            }
            if (granted != 0) {
                amxWhy = "the kernel did not grant the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)";
            } else {
                // (a, aOff, lda, rows, k, dst, dOff)
                split = linker.downcallHandle(find(lookup, library, "refldmseg_amx_split_a"), FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG,
                        JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG), Linker.Option.critical(true));
                // (ap, apOff, rows, chunks, ch0, h, f, bOff, bStride, bf16, kc, panels, lastCols, c, res, cOff, ldc, start, bias, biasOff, packed)
                gemm = linker.downcallHandle(find(lookup, library, "refldmseg_amx_gemm"), FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG,
                        JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                        ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS), Linker.Option.critical(true));
            }
        }
        amxSplitA = split;
        amxGemm = gemm;
        amxWhyNot = amxWhy;
    }

    private static MemorySegment find(SymbolLookup lookup, Path library, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException(library + " has no " + name));
    }

    /** Null when the CPU and the settings allow the AMX kernels (the OS may still refuse them), else what stops them. */
    private static String amxUnusableBecause() {
        if ("false".equalsIgnoreCase(System.getProperty(AMX_PROPERTY, "true"))) return "-D" + AMX_PROPERTY + "=false";
        try {
            if (!cpuFlags().containsAll(Set.of("amx_tile", "amx_bf16", "avx512bw"))) return "this CPU has no AMX-BF16";
        } catch (IOException e) {
            return "/proc/cpuinfo could not be read: " + e.getMessage();
        }
        return null;
    }

    /** The kernel, or null where the Vector API kernels run. */
    static NativeGemm get() {
        return INSTANCE;
    }

    /** Which kernels the CPU GEMM runs here: "native AVX2 kernel", "native AVX-512 kernels" (", AMX" added where they run) or "Vector API kernels". */
    static String kernels() {
        return INSTANCE == null ? "Vector API kernels" : INSTANCE.block != null ? "native AVX2 kernel"
                : INSTANCE.amx() ? "native AVX-512 kernels, AMX" : "native AVX-512 kernels";
    }

    /** Whether the AMX kernels run here ({@link #amxSplitA}, {@link #amxGemm}). */
    boolean amx() {
        return amxGemm != null;
    }

    /** Why the AMX kernels do not run here, or null when they do. */
    String amxWhyNot() {
        return amxWhyNot;
    }

    /** 16-bit values of one AMX tile (16 x 32 bf16). */
    static final int AMX_TILE = 512;

    /** Values of the split A of {@code rows} rows and K = k: ceil(rows / 16) row tiles of ceil(k / 32) chunks of three parts. */
    static long amxSplitSize(int rows, int k) {
        return (long) ((rows + 15) / 16) * ((k + 31) / 32) * 3 * AMX_TILE;
    }

    /** Values of one panel's K slice of kc values in AMX's B layout, in {@code parts} parts. */
    static long amxPackedSize(int kc, int parts) {
        return (long) ((kc + 31) / 32) * parts * 2 * AMX_TILE;
    }

    /**
     * rows rows of A (row r at a[aOff + r lda], k values) split exactly into three bf16 parts at dst (off-heap,
     * 64-byte aligned, so no tile row straddles two cache lines) from value dOff on,
     * laid out as AMX tiles ({@code cpu_gemm_amx.c}), zero past the rows (to a multiple of 16) and past k.
     */
    void amxSplitA(float[] a, int aOff, int lda, int rows, int k, MemorySegment dst, long dOff) {
        if (rows == 0) return;
        if (rows < 0 || k <= 0 || lda < k) throw new IllegalArgumentException("AMX split: " + rows + " rows of " + k + ", row stride " + lda);
        within("A", a.length, aOff, (long) (rows - 1) * lda + k);
        shortsWithin("split A", dst, dOff, amxSplitSize(rows, k));
        try {
            amxSplitA.invokeExact(MemorySegment.ofArray(a), (long) aOff, (long) lda, rows, k, dst, dOff);
        } catch (Throwable e) {
            throw new IllegalStateException("AMX split failed", e);
        }
    }

    /** bf16 parts of a B value: 1 for bf16, 2 for fp16, 3 for fp32. */
    static int amxParts(boolean fp32, boolean bf16) {
        return fp32 ? 3 : bf16 ? 1 : 2;
    }

    /**
     * C rows [0, rows) x panels [0, panels) (the last lastCols 1..32 wide; row r, panel q at c[cOff + r ldc + 32 q])
     * += A B over one K slice of kc values, or, with {@code start}, = residual (null: none; laid out as C) + bias
     * (null: none; bias[biasOff + 32 q ..]) + A B: A's chunks [ch0, ch0 + ceil(kc / 32)) of a split A whose row 0
     * is at ap[apOff] (chunks per row tile); B's panel q, element (kk, j) at bOff + q bStride + 32 kk + j of the
     * 16-bit {@code h} (fp16, or bf16 where {@code bf16}) or, with h null, of the fp32 {@code f}, each panel packed
     * into {@code packed} (off-heap, 64-byte aligned, {@link #amxPackedSize} values) just before its blocks run.
     */
    void amxGemm(MemorySegment ap, long apOff, int rows, int chunks, int ch0, short[] h, float[] f, int bOff, int bStride, boolean bf16,
                 int kc, int panels, int lastCols, float[] c, float[] residual, int cOff, int ldc, boolean start, float[] bias, int biasOff,
                 MemorySegment packed) {
        if (rows == 0 || panels == 0) return;
        int nc = (kc + 31) / 32;
        if ((h == null) == (f == null)) throw new IllegalArgumentException("AMX GEMM: B is either 16-bit or fp32");
        if (rows < 0 || panels < 0 || kc <= 0 || ch0 < 0 || ch0 + nc > chunks || bStride < 0 || lastCols < 1 || lastCols > 32)
            throw new IllegalArgumentException("AMX GEMM: rows " + rows + ", panels " + panels + ", chunks [" + ch0 + ", " + (ch0 + nc) + ") of "
                    + chunks + ", panel stride " + bStride + ", last panel's columns " + lastCols);
        shortsWithin("split A", ap, apOff, (long) ((rows + 15) / 16) * chunks * 3 * AMX_TILE);
        long bExtent = (long) (panels - 1) * bStride + 32L * kc;
        if (h != null) within("16-bit B", h.length, bOff, bExtent);
        else within("B", f.length, bOff, bExtent);
        shortsWithin("packed B", packed, 0, amxPackedSize(kc, amxParts(h == null, bf16)));
        long cExtent = (long) (rows - 1) * ldc + 32L * (panels - 1) + lastCols;
        within("C", c.length, cOff, cExtent);
        if (residual != null && start) within("residual", residual.length, cOff, cExtent);
        if (bias != null && start) within("bias", bias.length, biasOff, 32L * panels);
        try {
            amxGemm.invokeExact(ap, apOff, rows, chunks, ch0, segment(h), segment(f), (long) bOff, (long) bStride, bf16 ? 1 : 0, kc, panels,
                    lastCols, MemorySegment.ofArray(c), segment(start ? residual : null), (long) cOff, (long) ldc, start ? 1 : 0,
                    segment(start ? bias : null), (long) biasOff, packed);
        } catch (Throwable e) {
            throw new IllegalStateException("AMX GEMM failed", e);
        }
    }

    /** An off-heap, 64-byte aligned scratch segment holding [offset, offset + extent) of 16-bit values. */
    private static void shortsWithin(String what, MemorySegment segment, long offset, long extent) {
        if (!segment.isNative() || segment.address() % 64 != 0)
            throw new IllegalArgumentException("AMX: " + what + " must be off-heap and 64-byte aligned");
        long length = segment.byteSize() / 2;
        if (offset < 0 || extent < 0 || offset + extent > length)
            throw new IndexOutOfBoundsException("AMX: " + what + " [" + offset + ", " + (offset + extent) + ") outside its " + length + " values");
    }

    /** An off-heap scratch of at least {@code shorts} 16-bit values, 64-byte aligned, kept in {@code local} and grown as needed (freed by the GC). */
    static MemorySegment amxScratch(ThreadLocal<MemorySegment> local, long shorts) {
        MemorySegment s = local.get();
        if (s == null || s.byteSize() < 2 * shorts) {
            s = Arena.ofAuto().allocate(Math.max(2 * shorts, 4096), 64);
            local.set(s);
        }
        return s;
    }

    /** Why the native kernel does not run here, or null when it does. */
    static String whyNot() {
        return WHY_NOT;
    }

    /**
     * C rows [0, rows) x panels [0, panels) = or += A B^T (+ bias), panel by panel; the last panel
     * has lastCols (1..16) columns of C. Offsets in floats: row r of A at a[aOff + r lda], panel
     * p's K slice of kc at b[bOff + p bStride] as [kc][16] (zero past the real columns), C's row r,
     * panel p at c[cOff + r ldc + 16 p], the residual (null: none; not read when accumulating, else
     * C = residual + A B^T (+ bias)) laid out as C, the bias (null: none; not read when accumulating)
     * at bias[biasOff + 16 p], 16 values per panel. Where {@code h} is not null, B's panel p is
     * 16-bit (fp16, or bf16 where {@code bf16}) at h[hOff + p hStride] ([kc][16]): the panel's
     * first row group widens it into b at bOff + p bStride as it multiplies it, the later groups
     * (and a later call given null) read it there.
     */
    void block(float[] a, int aOff, int lda, int rows, float[] b, int bOff, int bStride, short[] h, int hOff, int hStride, boolean bf16,
               int panels, int lastCols,
               float[] c, float[] residual, int cOff, int ldc, int kc, boolean accumulate, float[] bias, int biasOff) {
        // the C code trusts its indices: check every array's extent here, so a wrong offset throws instead of corrupting the heap
        if (block == null) throw new IllegalStateException("the AVX2 block runs with 256-bit vectors only");
        if (rows == 0 || panels == 0) return;
        if (rows < 0 || panels < 0 || kc < 0 || lastCols < 1 || lastCols > 16) throw new IllegalArgumentException(
                "native GEMM block: rows " + rows + ", panels " + panels + ", kc " + kc + ", last panel's columns " + lastCols);
        within("A", a.length, aOff, (long) (rows - 1) * lda + kc);
        within("B", b.length, bOff, (long) (panels - 1) * bStride + (long) kc * 16);
        halfWithin(h, hOff, hStride, panels, kc * 16L);
        long cExtent = (long) (rows - 1) * ldc + 16L * (panels - 1) + lastCols;
        within("C", c.length, cOff, cExtent);
        if (residual != null && !accumulate) within("residual", residual.length, cOff, cExtent);
        if (bias != null && !accumulate) within("bias", bias.length, biasOff, 16L * panels);
        try {
            block.invokeExact(MemorySegment.ofArray(a), (long) aOff, (long) lda, rows, MemorySegment.ofArray(b), (long) bOff,
                    (long) bStride, segment(h), (long) hOff, (long) hStride, bf16 ? 1 : 0, panels, lastCols, MemorySegment.ofArray(c), segment(accumulate ? null : residual), (long) cOff, (long) ldc,
                    kc, accumulate ? 1 : 0, segment(accumulate ? null : bias), (long) biasOff);
        } catch (Throwable e) {
            throw new IllegalStateException("native GEMM kernel failed", e);
        }
    }

    /**
     * The AVX-512 block: C rows [0, rows12 + rows6) x panels [0, panels) = or += A B^T (+ bias),
     * row group by row group. The first rows12 rows come from 12-row packed panels ([kc][12], element
     * (r, k) at ap[apOff + g apStride + 12 k + r] for group g; a partly filled last group is zero past
     * its rows) or, with ap null, are read in place, row r at a[aOff + r lda]; the next rows6 (0..6)
     * are read in place, row rows12 + r at a[aOff + (rows12 + r) lda]. B, C, the residual and the
     * bias as in {@link #block}, with 32 columns per panel (lastCols 1..32); or, where {@code h} is
     * not null, B's panel p is 16-bit (fp16, or bf16 where {@code bf16}) at h[hOff + p hStride]
     * ([kc][32]): the first row group widens it into b at bOff + p bStride as it multiplies it, the
     * later groups (and a later call given null) read it there.
     */
    void block512(float[] ap, int apOff, int apStride, int rows12, float[] a, int aOff, int lda, int rows6,
                  float[] b, int bOff, int bStride, short[] h, int hOff, int hStride, boolean bf16, int panels, int lastCols,
                  float[] c, float[] residual, int cOff, int ldc, int kc, boolean accumulate, float[] bias, int biasOff) {
        if (block512 == null) throw new IllegalStateException("the AVX-512 block runs with 512-bit vectors only");
        int rows = rows12 + rows6;
        if (rows == 0 || panels == 0) return;
        if (rows12 < 0 || rows6 < 0 || rows6 > 6 || panels < 0 || kc < 0 || lastCols < 1 || lastCols > 32) throw new IllegalArgumentException(
                "native GEMM block: rows " + rows12 + " + " + rows6 + ", panels " + panels + ", kc " + kc + ", last panel's columns " + lastCols);
        boolean inPlace = ap == null;
        if (rows12 > 0 && !inPlace) within("packed A", ap.length, apOff, (long) ((rows12 + 11) / 12 - 1) * apStride + 12L * kc);
        if (inPlace || rows6 > 0) within("A", a.length, aOff, (long) (rows - 1) * lda + kc);
        within("B", b.length, bOff, (long) (panels - 1) * bStride + (long) kc * 32);
        halfWithin(h, hOff, hStride, panels, kc * 32L);
        long cExtent = (long) (rows - 1) * ldc + 32L * (panels - 1) + lastCols;
        within("C", c.length, cOff, cExtent);
        if (residual != null && !accumulate) within("residual", residual.length, cOff, cExtent);
        if (bias != null && !accumulate) within("bias", bias.length, biasOff, 32L * panels);
        try {
            block512.invokeExact(segment(rows12 > 0 ? ap : null), (long) apOff, (long) apStride, rows12,
                    segment(inPlace || rows6 > 0 ? a : null), (long) aOff, (long) lda, rows6,
                    MemorySegment.ofArray(b), (long) bOff, (long) bStride, segment(h), (long) hOff,
                    (long) hStride, bf16 ? 1 : 0, panels, lastCols,
                    MemorySegment.ofArray(c), segment(accumulate ? null : residual), (long) cOff, (long) ldc, kc, accumulate ? 1 : 0,
                    segment(accumulate ? null : bias), (long) biasOff);
        } catch (Throwable e) {
            throw new IllegalStateException("native GEMM kernel failed", e);
        }
    }

    /**
     * count slices of len 16-bit values, slice s at h[hOff + s hStride], as fp32 at dst[dOff + s
     * dStride]: fp16 bits, or bf16 bits (the top half of an fp32) where {@code bf16}. Exact, the
     * same bits as {@link Float#float16ToFloat} or {@code bits << 16}; it prefetches the source
     * ahead, which the weights of a forward (each read once, from memory) need.
     */
    void widen(short[] h, int hOff, int hStride, float[] dst, int dOff, int dStride, int len, int count, boolean bf16) {
        if (count == 0 || len == 0) return;
        if (count < 0 || len < 0 || hStride < 0 || dStride < 0)
            throw new IllegalArgumentException("native widen: " + count + " slices of " + len + ", strides " + hStride + " and " + dStride);
        long hExtent = (long) (count - 1) * hStride + len, dExtent = (long) (count - 1) * dStride + len;
        if (hOff < 0 || hOff + hExtent > h.length)
            throw new IndexOutOfBoundsException("native widen: source [" + hOff + ", " + (hOff + hExtent) + ") outside its " + h.length + " values");
        within("widened B", dst.length, dOff, dExtent);
        try {
            widen.invokeExact(MemorySegment.ofArray(h), (long) hOff, (long) hStride, MemorySegment.ofArray(dst), (long) dOff, (long) dStride,
                    (long) len, count, bf16 ? 1 : 0);
        } catch (Throwable e) {
            throw new IllegalStateException("native widen failed", e);
        }
    }

    private static MemorySegment segment(float[] array) {
        return array == null ? MemorySegment.NULL : MemorySegment.ofArray(array);
    }

    private static MemorySegment segment(short[] array) {
        return array == null ? MemorySegment.NULL : MemorySegment.ofArray(array);
    }

    /** The 16-bit B of a block (null: none), panels of panelValues from hOff, hStride apart, inside h. */
    private static void halfWithin(short[] h, int hOff, int hStride, int panels, long panelValues) {
        if (h == null) return;
        long extent = (long) (panels - 1) * hStride + panelValues;
        if (hOff < 0 || hStride < 0 || hOff + extent > h.length)
            throw new IndexOutOfBoundsException("native GEMM block: 16-bit B [" + hOff + ", " + (hOff + extent) + ") outside its " + h.length + " values");
    }

    private static void within(String what, int length, int offset, long extent) {
        if (offset < 0 || extent < 0 || offset + extent > length)
            throw new IndexOutOfBoundsException("native GEMM block: " + what + " [" + offset + ", " + (offset + extent) + ") outside its " + length + " floats");
    }

    /** Null when the native kernel can run here, else what stops it. */
    private static String unusableBecause() throws IOException {
        if ("false".equalsIgnoreCase(System.getProperty(PROPERTY, "true"))) return "-D" + PROPERTY + "=false";
        int bits = FloatVector.SPECIES_PREFERRED.vectorBitSize();
        if (bits != 256 && bits != 512) return bits + "-bit vectors (the native kernels are 256- and 512-bit ones)";
        if (!System.getProperty("os.name", "").startsWith("Linux") || !System.getProperty("os.arch", "").equals("amd64"))
            return "the native kernel is built for Linux x86-64 only";
        if (bits == 256 && !cpuFlags().containsAll(Set.of("avx2", "fma", "f16c"))) return "this CPU has no AVX2 + FMA + F16C";
        if (bits == 512 && !cpuFlags().containsAll(Set.of("avx512f", "f16c"))) return "this CPU has no AVX-512F + F16C";
        if (NativeGemm.class.getResource(RESOURCE) == null) return "this build has no native kernel (no C compiler when it was built)";
        return null;
    }

    /** The "flags" of the first CPU in /proc/cpuinfo (empty where it cannot be read). */
    static Set<String> cpuFlags() throws IOException {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (!Files.isReadable(cpuinfo)) return Set.of();
        for (String line : Files.readAllLines(cpuinfo))
            if (line.startsWith("flags")) return Set.copyOf(Arrays.asList(line.substring(line.indexOf(':') + 1).trim().split("\\s+")));
        return Set.of();
    }

    /** The library resource as a file the dynamic linker can open (deleted when the JVM exits). */
    private static Path extract() throws IOException {
        Path file = Files.createTempFile("refldmseg-cpu-avx2-", ".so");
        file.toFile().deleteOnExit();
        try (InputStream in = NativeGemm.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new IOException("resource " + RESOURCE + " is missing");
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        }
        return file;
    }
}
