package io.refldmseg.loader;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens a checkpoint file by looking at its first bytes, not at its extension. */
final class Checkpoints {
    private Checkpoints() {
    }

    static TensorFile openFile(Path path) {
        if (!Files.exists(path)) throw new CheckpointException(path + ": no such file");
        if (Files.isDirectory(path)) throw new CheckpointException(path + ": is a directory, expected a checkpoint file");
        byte[] head = new byte[4];
        int n;
        try (InputStream in = Files.newInputStream(path)) {
            n = in.readNBytes(head, 0, 4);
        } catch (IOException e) {
            throw new CheckpointException(path + ": cannot read: " + e.getMessage(), e);
        }
        if (isZip(head, n)) return TorchCheckpoint.open(path);
        refuseLegacyTorch(path, head, n);
        return SafeTensors.open(path);
    }

    /** How a format reads a whole file held in memory owned by {@code arena} (closed by the reader on failure). */
    interface Reader {
        TensorFile read(Path path, java.lang.foreign.MemorySegment file, java.lang.foreign.Arena arena);
    }

    /** Maps {@code path} read-only and hands the mapping to {@code reader}. */
    static TensorFile mapped(Path path, Reader reader) {
        java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared();
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(path, java.nio.file.StandardOpenOption.READ)) {
            return reader.read(path, ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena), arena);
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException(path + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** The same for a file's bytes already in memory ({@code label} names it in messages). */
    static TensorFile openBytes(Path label, byte[] bytes) {
        java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared();
        java.lang.foreign.MemorySegment seg = arena.allocate(Math.max(1, bytes.length));
        java.lang.foreign.MemorySegment.copy(bytes, 0, seg, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, bytes.length);
        seg = seg.asSlice(0, bytes.length);
        int n = Math.min(4, bytes.length);
        if (isZip(bytes, n)) return TorchCheckpoint.read(label, seg, arena);
        try {
            refuseLegacyTorch(label, bytes, n);
        } catch (CheckpointException e) {
            arena.close();
            throw e;
        }
        return SafeTensors.read(label, seg, arena);
    }

    private static boolean isZip(byte[] head, int n) {
        return n == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
    }

    /** torch.save before 1.6: a protocol-2 pickle starting with its 10-byte magic number (PROTO 2, LONG1 10). */
    private static void refuseLegacyTorch(Path path, byte[] head, int n) {
        if (n == 4 && (head[0] & 0xff) == 0x80 && head[1] == 2 && (head[2] & 0xff) == 0x8a && head[3] == 10)
            throw new CheckpointException(path + ": legacy (pre-1.6, non-zip) torch.save format is not supported; "
                    + "re-save it with a recent PyTorch or convert it to safetensors");
    }
}
