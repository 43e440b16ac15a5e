package io.refldmseg.engine.cuda;

/**
 * One device allocation handed out by bumping a pointer: activations of a forward take slices of
 * it and {@link #rewind(long)} frees them back to a mark, so a forward makes no cuMemAlloc/cuMemFree calls.
 */
final class DeviceArena implements AutoCloseable {
    private static final long ALIGN = 256;
    private final CudaDriver cu;
    private final long base, capacity;
    private long used, peak;

    DeviceArena(CudaDriver cu, long capacity) {
        this.cu = cu;
        this.capacity = capacity;
        this.base = cu.malloc(capacity);
    }

    long allocate(long bytes) {
        long start = (used + ALIGN - 1) / ALIGN * ALIGN;
        if (start + bytes > capacity)
            throw new CudaException("device arena of " + (capacity >> 20) + " MiB is full: " + (start >> 20) + " MiB in use, "
                    + bytes + " more bytes asked; reset it between forwards or give the backend a larger arena");
        used = start + bytes;
        peak = Math.max(peak, used);
        return base + start;
    }

    /** Frees every slice handed out since {@code used()} was {@code mark}; tensors in them must not be used again. */
    void rewind(long mark) {
        if (mark < 0 || mark > used) throw new IllegalArgumentException("arena mark " + mark + " is not below the " + used + " bytes in use");
        used = mark;
    }

    /** The device address of arena offset {@code offset}. */
    long address(long offset) {
        return base + offset;
    }

    long used() {
        return used;
    }

    long peak() {
        return peak;
    }

    @Override
    public void close() {
        cu.free(base);
    }
}
