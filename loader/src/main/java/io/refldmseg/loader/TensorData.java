package io.refldmseg.loader;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One tensor as stored in a checkpoint: a typed, possibly strided view over file bytes (usually
 * a memory-mapped region). Nothing is copied or converted until {@link #toFloats()} and friends
 * are called, so narrow (fp16/bf16) weights stay narrow until a backend asks for fp32.
 *
 * @param source    file the tensor came from (for error messages)
 * @param name      key in that file
 * @param storage   the bytes of the underlying storage
 * @param offset    element offset of element [0,...,0] into the storage
 * @param strides   element strides, one per dimension
 */
public record TensorData(String source, String name, DType dtype, long[] shape, MemorySegment storage,
                         long offset, long[] strides) {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Checks what a file declared: dimensions and strides >= 0, element and byte counts within 64 bits, and every element inside the storage. */
    public TensorData {
        if (strides.length != shape.length)
            throw Sizes.fail(source, name, "shape " + Arrays.toString(shape) + " but strides " + Arrays.toString(strides));
        long numel = Sizes.elements(source, name, shape);
        if (offset < 0) throw Sizes.fail(source, name, "storage offset " + offset + " is negative");
        long last = offset;
        for (int i = 0; i < shape.length; i++) {
            if (strides[i] < 0) throw Sizes.fail(source, name, "stride " + Arrays.toString(strides) + " is negative");
            if (shape[i] > 0) last = Sizes.add(source, name, "last element index",
                    last, Sizes.multiply(source, name, "last element index", shape[i] - 1, strides[i]));
        }
        if (numel > 0) {
            long end = Sizes.multiply(source, name, "byte size", Sizes.add(source, name, "byte size", last, 1), dtype.size);
            if (end > storage.byteSize())
                throw Sizes.fail(source, name, "shape " + Arrays.toString(shape) + ", strides " + Arrays.toString(strides)
                        + ", offset " + offset + " reach byte " + end + " of a storage of " + storage.byteSize() + " bytes");
        }
    }

    /** A contiguous row-major tensor over {@code bytes}. */
    public static TensorData contiguous(String source, String name, DType dtype, long[] shape, MemorySegment bytes) {
        return new TensorData(source, name, dtype, shape, bytes, 0, contiguousStrides(shape));
    }

    public static long[] contiguousStrides(long[] shape) {
        long[] s = new long[shape.length];
        long acc = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    /** The element count (checked to fit 64 bits when the tensor was made). */
    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public int rank() {
        return shape.length;
    }

    /** Dimension {@code i} (negative counts from the end); a clear error when the tensor has no such dimension or it exceeds an int. */
    public int dim(int i) {
        int at = i < 0 ? shape.length + i : i;
        if (at < 0 || at >= shape.length)
            throw Sizes.fail(source, name, "has shape " + Arrays.toString(shape) + " (rank " + shape.length + "), no dimension " + i);
        if (shape[at] > Integer.MAX_VALUE) throw Sizes.fail(source, name, "dimension " + i + " = " + shape[at] + " is too large");
        return (int) shape[at];
    }

    public boolean isContiguous() {
        return Arrays.equals(strides, contiguousStrides(shape));
    }

    /** Same data under another name (layout mapping); shape must keep the element count. */
    public TensorData renamed(String newName) {
        return new TensorData(source, newName, dtype, shape, storage, offset, strides);
    }

    /** Same contiguous data seen with another shape of equal element count (e.g. [C,C,1,1] -> [C,C]). */
    public TensorData reshaped(long... newShape) {
        long n = Sizes.elements(source, name, newShape);
        if (n != numel() || !isContiguous())
            throw new CheckpointException(source + ": tensor '" + name + "' of shape " + Arrays.toString(shape)
                    + " cannot be viewed as " + Arrays.toString(newShape));
        return new TensorData(source, name, dtype, newShape, storage, offset, contiguousStrides(newShape));
    }

    /**
     * The elements in row-major order, widened to fp32 (fp16/bf16/f64/integers all convert). A
     * contiguous tensor of a mapped file then gives its pages back to the OS: the models keep their
     * own packed copy, and a whole checkpoint's pages stayed resident until the file was closed.
     */
    public float[] toFloats() {
        try {
            float[] out = readFloats();
            if (storage.isMapped() && isContiguous() && numel() > 0) storage.asSlice(offset * dtype.size, numel() * dtype.size).unload();
            return out;
        } catch (InternalError e) {
            throw mappedFault(e);
        }
    }

    private float[] readFloats() {
        int n = Sizes.arrayLength(source, name, numel());
        float[] out = new float[n];
        if (n == 0) return out; // an empty tensor's offset may lie past its storage: nothing to read there
        if (dtype == DType.F32 && isContiguous()) {
            MemorySegment.copy(storage, F32, offset * 4, out, 0, n);
            return out;
        }
        if ((dtype == DType.F16 || dtype == DType.BF16) && isContiguous()) {
            short[] half = new short[n];
            MemorySegment.copy(storage, I16, offset * 2, half, 0, n);
            if (dtype == DType.F16) for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(half[i]);
            else for (int i = 0; i < n; i++) out[i] = Float.intBitsToFloat((half[i] & 0xffff) << 16);
            return out;
        }
        forEachIndex((i, e) -> out[i] = readFloat(e));
        return out;
    }

    /** The elements in row-major order as longs (integer and bool tensors; floats are truncated). */
    public long[] toLongs() {
        try {
            long[] out = new long[Sizes.arrayLength(source, name, numel())];
            forEachIndex((i, e) -> out[i] = readLong(e));
            return out;
        } catch (InternalError e) {
            throw mappedFault(e);
        }
    }

    /** The raw little-endian bytes in row-major order, dtype unchanged (for backends that keep fp16/bf16). */
    public MemorySegment contiguousBytes() {
        if (numel() == 0) return MemorySegment.ofArray(new byte[0]); // its offset may lie past the storage
        if (isContiguous()) return storage.asSlice(offset * dtype.size, numel() * dtype.size);
        try {
            MemorySegment out = MemorySegment.ofArray(new byte[Sizes.arrayLength(source, name, numel() * dtype.size)]);
            forEachIndex((i, e) -> MemorySegment.copy(storage, e * dtype.size, out, (long) i * dtype.size, dtype.size));
            return out;
        } catch (InternalError e) {
            throw mappedFault(e);
        }
    }

    /** A read of mapped file bytes faulted (the JVM's SIGBUS): the file shrank or changed while open. */
    private CheckpointException mappedFault(InternalError e) {
        return Sizes.fail(source, name, "reading its bytes failed (" + e.getMessage()
                + "): the file was truncated or changed while it was open");
    }

    private float readFloat(long element) {
        long at = element * dtype.size;
        return switch (dtype) {
            case F32 -> storage.get(F32, at);
            case F64 -> (float) storage.get(F64, at);
            case F16 -> Float.float16ToFloat(storage.get(I16, at));
            case BF16 -> Float.intBitsToFloat((storage.get(I16, at) & 0xffff) << 16);
            default -> (float) readLong(element);
        };
    }

    private long readLong(long element) {
        long at = element * dtype.size;
        return switch (dtype) {
            case I64 -> storage.get(I64, at);
            case I32 -> storage.get(I32, at);
            case I16 -> storage.get(I16, at);
            case I8 -> storage.get(ValueLayout.JAVA_BYTE, at);
            case U8, BOOL -> storage.get(ValueLayout.JAVA_BYTE, at) & 0xff;
            default -> (long) readFloat(element);
        };
    }

    private interface ElementVisitor {
        void visit(int flatIndex, long storageElement);
    }

    /** Visits elements in row-major order with their storage element index (honours strides). */
    private void forEachIndex(ElementVisitor v) {
        int n = Sizes.arrayLength(source, name, numel());
        if (isContiguous()) {
            for (int i = 0; i < n; i++) v.visit(i, offset + i);
            return;
        }
        int r = shape.length;
        long[] idx = new long[r];
        for (int i = 0; i < n; i++) {
            long e = offset;
            for (int d = 0; d < r; d++) e += idx[d] * strides[d];
            v.visit(i, e);
            for (int d = r - 1; d >= 0; d--) {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " (" + source + ")";
    }
}
