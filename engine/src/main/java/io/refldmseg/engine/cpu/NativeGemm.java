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
 * The 6 x 16 AVX2 + FMA micro-kernel compiled from {@code kernels/src/main/c} (a resource of the
 * kernels jar), called through a critical FFM downcall straight on the JVM's arrays. It computes
 * bit for bit what {@link Gemm}'s Vector API 6-row kernel computes; it exists because C2 compiles
 * that kernel with a lea per A row and no unrolling (unrolled by hand, C2 hoists every broadcast
 * and spills), while gcc unrolls the loop with the rows as base registers. Used only where the
 * GEMM runs with 256-bit vectors (NR = 16) on x86-64 Linux with AVX2 and FMA; elsewhere, or with
 * {@code -Drefldmseg.cpu.nativeKernels=false}, or when the build had no C compiler, the Vector API
 * kernels run and {@link #whyNot()} says why.
 */
final class NativeGemm {
    static final String RESOURCE = "/io/refldmseg/kernels/linux-x86_64/librefldmseg_cpu_avx2.so";
    static final String PROPERTY = "refldmseg.cpu.nativeKernels";

    private static final NativeGemm INSTANCE;
    /** Why the native kernel does not run here, or null when it does. */
    private static final String WHY_NOT;

    static {
        NativeGemm kernel = null;
        String whyNot;
        try {
            whyNot = unusableBecause();
            if (whyNot == null) kernel = new NativeGemm(extract());
        } catch (IOException | RuntimeException e) {
            whyNot = "the native kernel did not load: " + e.getMessage();
        }
        INSTANCE = kernel;
        WHY_NOT = whyNot;
    }

    private final MethodHandle block;

    private NativeGemm(Path library) {
        SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
        MemorySegment fn = lookup.find("refldmseg_avx2_block")
                .orElseThrow(() -> new IllegalStateException(library + " has no refldmseg_avx2_block"));
        block = Linker.nativeLinker().downcallHandle(fn,
                FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT,
                        ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG),
                Linker.Option.critical(true));
    }

    /** The kernel, or null where the Vector API kernels run. */
    static NativeGemm get() {
        return INSTANCE;
    }

    /** Which kernels the CPU GEMM runs here: "native AVX2 kernel" or "Vector API kernels". */
    static String kernels() {
        return INSTANCE != null ? "native AVX2 kernel" : "Vector API kernels";
    }

    /** Why the native kernel does not run here, or null when it does. */
    static String whyNot() {
        return WHY_NOT;
    }

    /**
     * C rows [0, rows) x panels [0, panels) = or += A B^T (+ bias), panel by panel; the last panel
     * has lastCols (1..16) columns of C. Offsets in floats: row r of A at a[aOff + r lda], panel
     * p's K slice of kc at b[bOff + p bStride] as [kc][16] (zero past the real columns), C's row r,
     * panel p at c[cOff + r ldc + 16 p], the bias (null: none; not read when accumulating) at
     * bias[biasOff + 16 p], 16 values per panel.
     */
    void block(float[] a, int aOff, int lda, int rows, float[] b, int bOff, int bStride, int panels, int lastCols,
               float[] c, int cOff, int ldc, int kc, boolean accumulate, float[] bias, int biasOff) {
        // the C code trusts its indices: check every array's extent here, so a wrong offset throws instead of corrupting the heap
        if (rows == 0 || panels == 0) return;
        if (rows < 0 || panels < 0 || kc < 0 || lastCols < 1 || lastCols > 16) throw new IllegalArgumentException(
                "native GEMM block: rows " + rows + ", panels " + panels + ", kc " + kc + ", last panel's columns " + lastCols);
        within("A", a.length, aOff, (long) (rows - 1) * lda + kc);
        within("B", b.length, bOff, (long) (panels - 1) * bStride + (long) kc * 16);
        within("C", c.length, cOff, (long) (rows - 1) * ldc + 16L * (panels - 1) + lastCols);
        if (bias != null && !accumulate) within("bias", bias.length, biasOff, 16L * panels);
        MemorySegment biasSegment = bias == null ? MemorySegment.NULL : MemorySegment.ofArray(bias);
        try {
            block.invokeExact(MemorySegment.ofArray(a), (long) aOff, (long) lda, rows, MemorySegment.ofArray(b), (long) bOff,
                    (long) bStride, panels, lastCols, MemorySegment.ofArray(c), (long) cOff, (long) ldc, kc, accumulate ? 1 : 0,
                    biasSegment, (long) biasOff);
        } catch (Throwable e) {
            throw new IllegalStateException("native GEMM kernel failed", e);
        }
    }

    private static void within(String what, int length, int offset, long extent) {
        if (offset < 0 || extent < 0 || offset + extent > length)
            throw new IndexOutOfBoundsException("native GEMM block: " + what + " [" + offset + ", " + (offset + extent) + ") outside its " + length + " floats");
    }

    /** Null when the native kernel can run here, else what stops it. */
    private static String unusableBecause() throws IOException {
        if ("false".equalsIgnoreCase(System.getProperty(PROPERTY, "true"))) return "-D" + PROPERTY + "=false";
        int bits = FloatVector.SPECIES_PREFERRED.vectorBitSize();
        if (bits != 256) return bits + "-bit vectors (the native kernel is the 256-bit one)";
        if (!System.getProperty("os.name", "").startsWith("Linux") || !System.getProperty("os.arch", "").equals("amd64"))
            return "the native kernel is built for Linux x86-64 only";
        if (!cpuFlags().containsAll(Set.of("avx2", "fma"))) return "this CPU has no AVX2 + FMA";
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
