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
        if (n == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return TorchCheckpoint.open(path);
        // torch.save before 1.6: a protocol-2 pickle starting with its 10-byte magic number (PROTO 2, LONG1 10)
        if (n == 4 && (head[0] & 0xff) == 0x80 && head[1] == 2 && (head[2] & 0xff) == 0x8a && head[3] == 10)
            throw new CheckpointException(path + ": legacy (pre-1.6, non-zip) torch.save format is not supported; "
                    + "re-save it with a recent PyTorch or convert it to safetensors");
        return SafeTensors.open(path);
    }
}
