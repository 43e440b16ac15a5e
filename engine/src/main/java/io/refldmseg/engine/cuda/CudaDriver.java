package io.refldmseg.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API (libcuda.so.1) bound with java.lang.foreign: no JCuda, no toolkit at run
 * time, any driver that runs the fatbin. Every call checks its CUresult and throws a
 * {@link CudaException} naming the call and the error.
 */
public final class CudaDriver {
    private static final Linker LINKER = Linker.nativeLinker();
    private final SymbolLookup lib;
    private final MethodHandle cuInit, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDevicePrimaryCtxRetain, cuCtxSetCurrent,
            cuCtxSynchronize, cuMemAlloc, cuMemFree, cuMemcpyHtoD, cuMemcpyDtoH, cuModuleLoadData, cuModuleGetFunction,
            cuLaunchKernel, cuGetErrorName;

    private CudaDriver(SymbolLookup lib) {
        this.lib = lib;
        cuInit = bind("cuInit", JAVA_INT);
        cuDeviceGetCount = bind("cuDeviceGetCount", ADDRESS);
        cuDeviceGet = bind("cuDeviceGet", ADDRESS, JAVA_INT);
        cuDeviceGetName = bind("cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
        cuDevicePrimaryCtxRetain = bind("cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
        cuCtxSetCurrent = bind("cuCtxSetCurrent", ADDRESS);
        cuCtxSynchronize = bind("cuCtxSynchronize");
        cuMemAlloc = bind("cuMemAlloc_v2", ADDRESS, JAVA_LONG);
        cuMemFree = bind("cuMemFree_v2", JAVA_LONG);
        cuMemcpyHtoD = bind("cuMemcpyHtoD_v2", JAVA_LONG, ADDRESS, JAVA_LONG);
        cuMemcpyDtoH = bind("cuMemcpyDtoH_v2", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuModuleLoadData = bind("cuModuleLoadData", ADDRESS, ADDRESS);
        cuModuleGetFunction = bind("cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
        cuLaunchKernel = bind("cuLaunchKernel", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS);
        cuGetErrorName = bind("cuGetErrorName", JAVA_INT, ADDRESS);
    }

    private MethodHandle bind(String name, MemoryLayout... args) {
        MemorySegment sym = lib.find(name).orElseThrow(() -> new CudaException("libcuda.so.1 has no symbol " + name));
        return LINKER.downcallHandle(sym, FunctionDescriptor.of(JAVA_INT, args));
    }

    /** The driver, or why there is none (no libcuda.so.1 on this machine). */
    public static Optional<CudaDriver> load(StringBuilder whyNot) {
        try {
            return Optional.of(new CudaDriver(SymbolLookup.libraryLookup("libcuda.so.1", Arena.global())));
        } catch (IllegalArgumentException e) {
            whyNot.append("no CUDA driver (libcuda.so.1 not found)");
            return Optional.empty();
        }
    }

    private void check(String call, Object result) {
        int code = (int) result;
        if (code == 0) return;
        String name = "CUresult " + code;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            if ((int) cuGetErrorName.invokeExact(code, p) == 0)
                name = p.get(ADDRESS, 0).reinterpret(256).getString(0);
        } catch (Throwable ignored) {
            // keep the numeric code
        }
        throw new CudaException(call + " failed: " + name);
    }

    private static RuntimeException wrap(Throwable t) {
        return t instanceof RuntimeException r ? r : new CudaException("driver call failed: " + t);
    }

    public void init() {
        try {
            check("cuInit", cuInit.invokeExact(0));
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check("cuDeviceGetCount", cuDeviceGetCount.invokeExact(n));
            return n.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(JAVA_INT);
            check("cuDeviceGet", cuDeviceGet.invokeExact(d, ordinal));
            return d.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(256);
            check("cuDeviceGetName", cuDeviceGetName.invokeExact(s, 256, device));
            return s.getString(0);
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    /** Retains the device's primary context and makes it current on this thread. */
    public MemorySegment usePrimaryContext(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain.invokeExact(p, device));
            MemorySegment ctx = p.get(ADDRESS, 0);
            check("cuCtxSetCurrent", cuCtxSetCurrent.invokeExact(ctx));
            return ctx;
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public void synchronize() {
        try {
            check("cuCtxSynchronize", cuCtxSynchronize.invokeExact());
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    /** Device memory of {@code bytes}; returns its CUdeviceptr. */
    public long malloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_LONG);
            check("cuMemAlloc_v2(" + bytes + " bytes)", cuMemAlloc.invokeExact(p, bytes));
            return p.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public void free(long ptr) {
        try {
            check("cuMemFree_v2", cuMemFree.invokeExact(ptr));
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public void copyToDevice(long dst, MemorySegment src) {
        try {
            check("cuMemcpyHtoD_v2", cuMemcpyHtoD.invokeExact(dst, src, src.byteSize()));
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public void copyToHost(MemorySegment dst, long src) {
        try {
            check("cuMemcpyDtoH_v2", cuMemcpyDtoH.invokeExact(dst, src, dst.byteSize()));
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    /** Loads a fatbin / cubin / PTX image; returns the CUmodule. */
    public MemorySegment loadModule(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L);
            img.copyFrom(MemorySegment.ofArray(image));
            MemorySegment p = a.allocate(ADDRESS);
            check("cuModuleLoadData", cuModuleLoadData.invokeExact(p, img));
            return p.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    public MemorySegment function(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check("cuModuleGetFunction(" + name + ")", cuModuleGetFunction.invokeExact(p, module, a.allocateFrom(name)));
            return p.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw wrap(t);
        }
    }

    /**
     * Launches {@code fn} on the default stream. {@code args} are the kernel's parameters in order:
     * Long for pointers and 64-bit integers, Integer, Float.
     */
    public void launch(MemorySegment fn, int gridX, int blockX, int sharedBytes, Object... args) {
        launchGrid(fn, gridX, 1, blockX, sharedBytes, args);
    }

    /** Launches {@code fn} on a (gridX, gridY) grid of 1-D blocks on the default stream; arguments as above. */
    public void launchGrid(MemorySegment fn, int gridX, int gridY, int blockX, int sharedBytes, Object... args) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                MemorySegment slot = switch (args[i]) {
                    case Long l -> a.allocateFrom(JAVA_LONG, l);
                    case Integer n -> a.allocateFrom(JAVA_INT, n);
                    case Float f -> a.allocateFrom(ValueLayout.JAVA_FLOAT, f);
                    case Double dd -> a.allocateFrom(ValueLayout.JAVA_DOUBLE, dd);
                    default -> throw new IllegalArgumentException("unsupported kernel argument " + args[i]);
                };
                params.setAtIndex(ADDRESS, i, slot);
            }
            check("cuLaunchKernel", cuLaunchKernel.invokeExact(fn, gridX, gridY, 1, blockX, 1, 1, sharedBytes, MemorySegment.NULL, params,
                    MemorySegment.NULL));
        } catch (Throwable t) {
            throw wrap(t);
        }
    }
}
