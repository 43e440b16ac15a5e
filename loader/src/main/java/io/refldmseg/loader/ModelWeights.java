package io.refldmseg.loader;

import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The tensors of one network under the engine's internal names (diffusers names for the UNet
 * and VAE, Alpha-CLIP visual names for the vision tower), whatever layout the file used.
 *
 * @param source what was loaded (file or folder), for error messages
 * @param layout the layout that was detected, in words
 */
public record ModelWeights(String source, String layout, Map<String, TensorData> tensors, List<TensorFile> files)
        implements AutoCloseable {

    public ModelWeights {
        tensors = Collections.unmodifiableMap(new TreeMap<>(tensors));
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    /** The named tensor; a clear error naming the source and layout when it is missing. */
    public TensorData get(String name) {
        TensorData t = tensors.get(name);
        if (t == null) throw new CheckpointException(source + " (" + layout + "): missing tensor '" + name + "'");
        return t;
    }

    /** The named tensor, checked to have exactly {@code shape}. */
    public TensorData get(String name, long... shape) {
        TensorData t = get(name);
        if (!java.util.Arrays.equals(t.shape(), shape))
            throw new CheckpointException(source + " (" + layout + "): tensor '" + name + "' has shape "
                    + java.util.Arrays.toString(t.shape()) + ", expected " + java.util.Arrays.toString(shape));
        return t;
    }

    /** Number of consecutive indices i = 0, 1, ... for which {@code prefix + i + suffix} exists. */
    public int count(String prefix, String suffix) {
        int n = 0;
        while (has(prefix + n + suffix)) n++;
        return n;
    }

    public long parameterCount() {
        return tensors.values().stream().mapToLong(TensorData::numel).sum();
    }

    @Override
    public void close() {
        files.forEach(TensorFile::close);
    }
}
