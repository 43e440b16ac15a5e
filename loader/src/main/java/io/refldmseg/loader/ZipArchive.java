package io.refldmseg.loader;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Minimal read-only zip reader over a memory-mapped file (ZIP64 aware), enough for PyTorch's
 * checkpoint archives: entries are located through the central directory and stored entries
 * are returned as zero-copy slices of the mapping (torch writes tensor data uncompressed).
 */
final class ZipArchive {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Largest entry inflated into memory (data.pkl of a full SD checkpoint is well under 10 MB). */
    static final long MAX_INFLATED = 256L << 20;
    /** Deflate expands at most ~1032:1, so a declared size beyond this is a lie told before inflating. */
    private static final long MAX_DEFLATE_RATIO = 1032;

    record Entry(String name, int method, long compressedSize, long size, long localHeaderOffset) {
    }

    private final Path path;
    private final MemorySegment file;
    private final Map<String, Entry> entries = new LinkedHashMap<>();

    ZipArchive(Path path, MemorySegment file) {
        this.path = path;
        this.file = file;
        readCentralDirectory();
    }

    Map<String, Entry> entries() {
        return entries;
    }

    /** The uncompressed bytes of an entry: a slice of the mapping when stored, else inflated. */
    MemorySegment data(Entry e) {
        long lho = e.localHeaderOffset;
        need(lho, 30, "local header of '" + e.name + "'");
        if (file.get(U32, lho) != 0x04034b50) throw fail("entry '" + e.name + "': bad local header signature");
        int nameLen = u16(lho + 26), extraLen = u16(lho + 28);
        long start = lho + 30 + nameLen + extraLen;
        need(start, e.compressedSize, "data of entry '" + e.name + "'");
        MemorySegment raw = file.asSlice(start, e.compressedSize);
        if (e.method == 0) {
            if (e.compressedSize != e.size) throw fail("entry '" + e.name + "': stored entry with differing sizes");
            return raw;
        }
        if (e.method != 8) throw fail("entry '" + e.name + "': unsupported compression method " + e.method);
        if (e.size < 0 || e.size > MAX_INFLATED)
            throw fail("entry '" + e.name + "': declared uncompressed size " + e.size + " is beyond the " + MAX_INFLATED + "-byte limit for compressed entries");
        if (e.size > e.compressedSize * MAX_DEFLATE_RATIO + 1024)
            throw fail("entry '" + e.name + "': declares " + e.size + " bytes from " + e.compressedSize
                    + " compressed, more than deflate can expand to");
        Inflater inf = new Inflater(true);
        try {
            inf.setInput(raw.asByteBuffer());
            byte[] out = new byte[(int) e.size];
            int n = 0;
            while (n < out.length && !inf.finished()) {
                int k = inf.inflate(out, n, out.length - n);
                if (k == 0 && (inf.needsInput() || inf.needsDictionary())) break;
                n += k;
            }
            if (n != out.length) throw fail("entry '" + e.name + "': inflated " + n + " bytes, expected " + e.size);
            return MemorySegment.ofArray(out);
        } catch (DataFormatException ex) {
            throw fail("entry '" + e.name + "': corrupt deflate data: " + ex.getMessage());
        } finally {
            inf.end();
        }
    }

    private void readCentralDirectory() {
        long size = file.byteSize();
        long eocd = -1;
        for (long p = size - 22; p >= Math.max(0, size - 22 - 65535); p--) {
            if (file.get(U32, p) == 0x06054b50) {
                eocd = p;
                break;
            }
        }
        if (eocd < 0) throw fail("not a zip archive or truncated (no end-of-central-directory record)");
        long count = u16(eocd + 10);
        long cdSize = u32(eocd + 12);
        long cdOffset = u32(eocd + 16);
        if (count == 0xffff || cdOffset == 0xffffffffL || cdSize == 0xffffffffL) {
            long loc = eocd - 20;
            if (loc < 0 || file.get(U32, loc) != 0x07064b50) throw fail("ZIP64 locator missing");
            long z64 = file.get(U64, loc + 8);
            need(z64, 56, "ZIP64 end-of-central-directory record");
            if (file.get(U32, z64) != 0x06064b50) throw fail("bad ZIP64 end-of-central-directory signature");
            count = file.get(U64, z64 + 32);
            cdSize = file.get(U64, z64 + 40);
            cdOffset = file.get(U64, z64 + 48);
        }
        need(cdOffset, cdSize, "central directory");
        long p = cdOffset;
        for (long i = 0; i < count; i++) {
            need(p, 46, "central directory entry " + i);
            if (file.get(U32, p) != 0x02014b50) throw fail("central directory entry " + i + ": bad signature");
            int method = u16(p + 10);
            long csize = u32(p + 20), usize = u32(p + 24);
            int nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32);
            long lho = u32(p + 42);
            need(p + 46, nameLen + extraLen, "central directory entry " + i);
            String name = new String(file.asSlice(p + 46, nameLen).toArray(ValueLayout.JAVA_BYTE),
                    java.nio.charset.StandardCharsets.UTF_8);
            long x = p + 46 + nameLen, xend = x + extraLen;
            while (x + 4 <= xend) {
                int id = u16(x), len = u16(x + 2);
                if (id == 0x0001) {
                    long q = x + 4;
                    if (usize == 0xffffffffL && q + 8 <= x + 4 + len) { usize = file.get(U64, q); q += 8; }
                    if (csize == 0xffffffffL && q + 8 <= x + 4 + len) { csize = file.get(U64, q); q += 8; }
                    if (lho == 0xffffffffL && q + 8 <= x + 4 + len) { lho = file.get(U64, q); }
                }
                x += 4 + len;
            }
            entries.put(name, new Entry(name, method, csize, usize, lho));
            p += 46 + nameLen + extraLen + commentLen;
        }
    }

    private int u16(long at) {
        return file.get(U16, at) & 0xffff;
    }

    private long u32(long at) {
        return file.get(U32, at) & 0xffffffffL;
    }

    private void need(long at, long len, String what) {
        if (at < 0 || len < 0 || at > file.byteSize() || len > file.byteSize() - at)
            throw fail(what + " lies outside the file (offset " + at + ", " + len + " bytes, file " + file.byteSize()
                    + " bytes; truncated?)");
    }

    private CheckpointException fail(String what) {
        return new CheckpointException(path + ": " + what);
    }
}
