package io.refldmseg.loader;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;

/**
 * The tensors of one checkpoint file, by key, plus its string metadata (safetensors
 * {@code __metadata__}; empty for PyTorch files). Tensors view memory owned by this object's
 * arena: they are valid until {@link #close()}.
 */
public final class TensorFile implements AutoCloseable {
    private final Path path;
    private final Map<String, TensorData> tensors;
    private final Map<String, String> metadata;
    private final Arena arena;

    TensorFile(Path path, Map<String, TensorData> tensors, Map<String, String> metadata, Arena arena) {
        this.path = path;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.metadata = Collections.unmodifiableMap(metadata);
        this.arena = arena;
    }

    /** Opens a safetensors file or a PyTorch zip checkpoint, chosen by the file's magic bytes. */
    public static TensorFile open(Path path) {
        return Checkpoints.openFile(path);
    }

    public Path path() {
        return path;
    }

    public Map<String, TensorData> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** The tensor stored under {@code key}; a clear error naming the file when it is absent. */
    public TensorData tensor(String key) {
        TensorData t = tensors.get(key);
        if (t == null) throw new CheckpointException(path + ": missing tensor '" + key + "'");
        return t;
    }

    /** Unmaps the file; closing again does nothing. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
    }
}
