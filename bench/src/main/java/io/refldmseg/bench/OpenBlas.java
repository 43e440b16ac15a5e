package io.refldmseg.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/** OpenBLAS's cblas_sgemm bound through FFM, found at run time (a baseline for benchmarks only). */
final class OpenBlas {
    private static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;
    private final MethodHandle sgemm, setThreads;
    final String library;

    private OpenBlas(String library, SymbolLookup lookup) {
        this.library = library;
        Linker linker = Linker.nativeLinker();
        sgemm = linker.downcallHandle(lookup.find("cblas_sgemm").orElseThrow(), FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT));
        setThreads = lookup.find("openblas_set_num_threads").map(s -> linker.downcallHandle(s, FunctionDescriptor.ofVoid(JAVA_INT))).orElse(null);
    }

    /** The library, or empty (with the reason on stderr) when it is not installed. */
    static Optional<OpenBlas> find() {
        for (String name : new String[]{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0"}) {
            try {
                return Optional.of(new OpenBlas(name, SymbolLookup.libraryLookup(name, Arena.global())));
            } catch (IllegalArgumentException e) {
                // try the next name
            }
        }
        System.err.println("[bench] OpenBLAS not found (apt install libopenblas0-pthread): no baseline column");
        return Optional.empty();
    }

    void threads(int n) {
        try {
            if (setThreads != null) setThreads.invokeExact(n);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** C[m, n] = A[m, k] B[n, k]^T, row-major (B as a PyTorch linear weight). */
    void sgemmABt(int m, int n, int k, MemorySegment a, MemorySegment b, MemorySegment c) {
        try {
            sgemm.invokeExact(ROW_MAJOR, NO_TRANS, TRANS, m, n, k, 1f, a, k, b, k, 0f, c, n);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
