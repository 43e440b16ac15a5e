package io.refldmseg.loader;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads safetensors files by memory-mapping them read-only: opening parses and validates the
 * header only; tensor bytes are touched when a tensor is first used. Files larger than 2 GB
 * work (MemorySegment, not ByteBuffer).
 */
public final class SafeTensors {
    /** Headers beyond this are refused before allocating anything (real ones are a few hundred kB). */
    static final long MAX_HEADER_BYTES = 100L << 20;

    private SafeTensors() {
    }

    public static TensorFile open(Path path) {
        return Checkpoints.mapped(path, SafeTensors::read);
    }

    /** Parses a whole safetensors file held in {@code file} (owned by {@code arena}, closed on failure). */
    static TensorFile read(Path path, MemorySegment file, Arena arena) {
        try {
            long size = file.byteSize();
            if (size < 8)
                throw fail(path, "file is " + size + " bytes, shorter than the 8-byte header length (truncated?)");
            long headerLen = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES)
                throw fail(path, "header length " + headerLen + " is not sane (must be 1.." + MAX_HEADER_BYTES + ")");
            if (8 + headerLen > size)
                throw fail(path, "header length " + headerLen + " runs past the end of the file (" + size
                        + " bytes; truncated?)");
            String header = decodeUtf8(path, file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE));
            return parseHeader(path, header, file.asSlice(8 + headerLen), arena);
        } catch (InternalError e) { // a fault reading the mapping: the file shrank while open
            arena.close();
            throw fail(path, "reading the header failed (" + e.getMessage() + "): the file was truncated while being opened");
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static String decodeUtf8(Path path, byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw fail(path, "header is not valid UTF-8");
        }
    }

    private record Span(String name, long begin, long end) {
    }

    private static TensorFile parseHeader(Path path, String header, MemorySegment data, Arena arena) {
        Object root;
        try {
            root = Json.parse(header);
        } catch (IOException e) {
            throw fail(path, "header is not valid JSON: " + e.getMessage());
        }
        if (!(root instanceof Map<?, ?> entries)) throw fail(path, "header is not a JSON object");
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        List<Span> spans = new ArrayList<>();
        for (Map.Entry<?, ?> e : entries.entrySet()) {
            String name = (String) e.getKey();
            if (name.equals("__metadata__")) {
                if (!(e.getValue() instanceof Map<?, ?> m)) throw fail(path, "__metadata__ is not an object");
                for (Map.Entry<?, ?> me : m.entrySet()) {
                    if (!(me.getValue() instanceof String s))
                        throw fail(path, "__metadata__ value '" + me.getKey() + "' is not a string");
                    metadata.put((String) me.getKey(), s);
                }
                continue;
            }
            if (!(e.getValue() instanceof Map<?, ?> info)) throw fail(path, "tensor '" + name + "': entry is not an object");
            DType dtype = parseDType(path, name, info.get("dtype"));
            long[] shape = parseLongs(path, name, "shape", info.get("shape"), -1);
            long[] offsets = parseLongs(path, name, "data_offsets", info.get("data_offsets"), 2);
            long begin = offsets[0], end = offsets[1];
            if (end < begin) throw fail(path, "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] end before begin");
            if (end > data.byteSize())
                throw fail(path, "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] run past the data area ("
                        + data.byteSize() + " bytes; truncated file?)");
            long numel = Sizes.elements(path.toString(), name, shape);
            long expected = Sizes.multiply(path.toString(), name, "byte size of shape " + java.util.Arrays.toString(shape), numel, dtype.size);
            if (expected != end - begin)
                throw fail(path, "tensor '" + name + "': shape " + java.util.Arrays.toString(shape) + " x " + dtype
                        + " needs " + expected + " bytes but data_offsets span " + (end - begin));
            spans.add(new Span(name, begin, end));
            tensors.put(name, TensorData.contiguous(path.toString(), name, dtype, shape, data.asSlice(begin, end - begin)));
        }
        spans.sort(Comparator.comparingLong(Span::begin).thenComparingLong(Span::end));
        Span furthest = null;
        for (Span s : spans) {
            if (s.end == s.begin) continue;
            if (furthest != null && s.begin < furthest.end)
                throw fail(path, "tensors '" + furthest.name + "' [" + furthest.begin + ", " + furthest.end + ") and '"
                        + s.name + "' [" + s.begin + ", " + s.end + ") overlap");
            if (furthest == null || s.end > furthest.end) furthest = s;
        }
        return new TensorFile(path, tensors, metadata, arena);
    }

    private static DType parseDType(Path path, String name, Object v) {
        if (!(v instanceof String s)) throw fail(path, "tensor '" + name + "': dtype missing or not a string");
        return DType.fromSafetensors(s).orElseThrow(() -> fail(path, "tensor '" + name + "': unknown dtype '" + s + "'"));
    }

    private static long[] parseLongs(Path path, String name, String field, Object v, int expectedLen) {
        if (!(v instanceof List<?> list)) throw fail(path, "tensor '" + name + "': " + field + " missing or not a list");
        if (expectedLen >= 0 && list.size() != expectedLen)
            throw fail(path, "tensor '" + name + "': " + field + " has " + list.size() + " entries, expected " + expectedLen);
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Number n) || n instanceof Double)
                throw fail(path, "tensor '" + name + "': " + field + "[" + i + "] is not an integer");
            if (n instanceof java.math.BigInteger) throw fail(path, "tensor '" + name + "': " + field + "[" + i + "] is out of range");
            out[i] = n.longValue();
            if (out[i] < 0) throw fail(path, "tensor '" + name + "': " + field + "[" + i + "] = " + out[i] + " is negative");
        }
        return out;
    }

    static CheckpointException fail(Path path, String what) {
        return new CheckpointException(path + ": " + what);
    }

    /** Writes a safetensors file (used by tests, fixtures of our own and --save-tensors). */
    public static void write(Path path, Map<String, WriteEntry> tensors, Map<String, String> metadata) throws IOException {
        SafeTensorsWriter.write(path, tensors, metadata);
    }

    /** A tensor to write: dtype, shape and its row-major little-endian bytes. */
    public record WriteEntry(DType dtype, long[] shape, byte[] bytes) {
        public static WriteEntry f32(float[] data, long... shape) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(data);
            return new WriteEntry(DType.F32, shape, b.array());
        }

        public static WriteEntry u8(byte[] data, long... shape) {
            return new WriteEntry(DType.U8, shape, data);
        }
    }
}
