package io.refldmseg.loader;

import io.refldmseg.loader.RestrictedUnpickler.PickledTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads PyTorch zip checkpoints (torch.save since 1.6: .pt, .pth, .ckpt, .bin) without Python:
 * the archive is memory-mapped, {@code data.pkl} goes through {@link RestrictedUnpickler}, and
 * each tensor becomes a view of its {@code data/<key>} entry.
 *
 * <p>The state dict is the top-level dict itself, or the dict under {@code module} (DeepSpeed),
 * {@code state_dict} (Lightning, original SD .ckpt) or {@code model}. Other top-level scalars
 * (DeepSpeed's {@code ds_version}, {@code global_steps}, ...) are exposed as metadata strings.
 */
final class TorchCheckpoint {
    private static final List<String> STATE_DICT_KEYS = List.of("module", "state_dict", "model");

    private TorchCheckpoint() {
    }

    static TensorFile open(Path path) {
        return Checkpoints.mapped(path, TorchCheckpoint::read);
    }

    /** Reads a whole archive held in {@code file} (owned by {@code arena}, closed on failure). */
    static TensorFile read(Path path, MemorySegment file, Arena arena) {
        try {
            ZipArchive zip = new ZipArchive(path, file);
            String pkl = zip.entries().keySet().stream().filter(n -> n.equals("data.pkl") || n.endsWith("/data.pkl"))
                    .findFirst().orElseThrow(() -> new CheckpointException(path + ": zip has no data.pkl entry (not a torch.save archive)"));
            String prefix = pkl.substring(0, pkl.length() - "data.pkl".length());
            Object root = RestrictedUnpickler.load(path + " (" + pkl + ")", zip.data(zip.entries().get(pkl)).asByteBuffer());
            Map<String, TensorData> tensors = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<?, ?> stateDict = findStateDict(path, root, metadata);
            Map<String, MemorySegment> storages = new java.util.HashMap<>();
            for (Map.Entry<?, ?> e : stateDict.entrySet()) {
                if (!(e.getKey() instanceof String key)) continue;
                if (e.getValue() instanceof PickledTensor pt) {
                    MemorySegment bytes = storages.computeIfAbsent(pt.storage().key(), k -> storageBytes(path, zip, prefix, pt, key));
                    tensors.put(key, bind(path, key, pt, bytes));
                }
            }
            return new TensorFile(path, tensors, metadata, arena);
        } catch (InternalError e) { // a fault reading the mapping: the file shrank while open
            arena.close();
            throw new CheckpointException(path + ": reading the archive failed (" + e.getMessage()
                    + "): the file was truncated or changed while it was open", e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Map<?, ?> findStateDict(Path path, Object root, Map<String, String> metadata) {
        if (!(root instanceof Map<?, ?> top)) throw new CheckpointException(path + ": top-level object is not a dict");
        for (String k : STATE_DICT_KEYS) {
            if (top.get(k) instanceof Map<?, ?> inner && inner.values().stream().anyMatch(v -> v instanceof PickledTensor)) {
                for (Map.Entry<?, ?> e : top.entrySet())
                    if (e.getKey() instanceof String s && (e.getValue() instanceof String || e.getValue() instanceof Number
                            || e.getValue() instanceof Boolean)) metadata.put(s, String.valueOf(e.getValue()));
                return inner;
            }
        }
        if (top.values().stream().anyMatch(v -> v instanceof PickledTensor)) return top;
        throw new CheckpointException(path + ": no state dict found (no tensors at the top level or under "
                + String.join("/", STATE_DICT_KEYS) + "; keys: " + top.keySet() + ")");
    }

    private static MemorySegment storageBytes(Path path, ZipArchive zip, String prefix, PickledTensor pt, String tensor) {
        String entryName = prefix + "data/" + pt.storage().key();
        ZipArchive.Entry entry = zip.entries().get(entryName);
        if (entry == null)
            throw new CheckpointException(path + ": tensor '" + tensor + "': zip has no data entry '" + entryName + "'");
        MemorySegment bytes = zip.data(entry);
        long needed = Sizes.multiply(path.toString(), tensor, "storage of " + pt.storage().numel() + " elements",
                pt.storage().numel(), pt.storage().dtype().size);
        if (bytes.byteSize() < needed)
            throw new CheckpointException(path + ": tensor '" + tensor + "': data entry '" + entryName + "' has "
                    + bytes.byteSize() + " bytes, its storage needs " + needed + " (truncated?)");
        return bytes;
    }

    private static TensorData bind(Path path, String key, PickledTensor pt, MemorySegment bytes) {
        String src = path.toString();
        if (pt.offset() < 0) throw Sizes.fail(src, key, "storage offset " + pt.offset() + " is negative");
        long last = pt.offset();
        boolean empty = false;
        for (int i = 0; i < pt.shape().length; i++) {
            if (pt.shape()[i] == 0) empty = true;
            else last = Sizes.add(src, key, "last element index", last,
                    Sizes.multiply(src, key, "last element index", pt.shape()[i] - 1, pt.stride()[i]));
        }
        if (!empty && last >= pt.storage().numel())
            throw new CheckpointException(path + ": tensor '" + key + "': shape " + Arrays.toString(pt.shape()) + ", stride "
                    + Arrays.toString(pt.stride()) + ", offset " + pt.offset() + " reach element " + last
                    + " of a storage holding " + pt.storage().numel());
        return new TensorData(path.toString(), key, pt.storage().dtype(), pt.shape(), bytes, pt.offset(), pt.stride());
    }
}
