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

    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return Math.toIntExact(shape[i < 0 ? shape.length + i : i]);
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
        long n = 1;
        for (long d : newShape) n *= d;
        if (n != numel() || !isContiguous())
            throw new CheckpointException(source + ": tensor '" + name + "' of shape " + Arrays.toString(shape)
                    + " cannot be viewed as " + Arrays.toString(newShape));
        return new TensorData(source, name, dtype, newShape, storage, offset, contiguousStrides(newShape));
    }

    /** The elements in row-major order, widened to fp32 (fp16/bf16/f64/integers all convert). */
    public float[] toFloats() {
        int n = Math.toIntExact(numel());
        float[] out = new float[n];
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
        long[] out = new long[Math.toIntExact(numel())];
        forEachIndex((i, e) -> out[i] = readLong(e));
        return out;
    }

    /** The raw little-endian bytes in row-major order, dtype unchanged (for backends that keep fp16/bf16). */
    public MemorySegment contiguousBytes() {
        if (isContiguous()) return storage.asSlice(offset * dtype.size, numel() * dtype.size);
        MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(numel() * dtype.size)]);
        forEachIndex((i, e) -> MemorySegment.copy(storage, e * dtype.size, out, (long) i * dtype.size, dtype.size));
        return out;
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
        int n = Math.toIntExact(numel());
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
