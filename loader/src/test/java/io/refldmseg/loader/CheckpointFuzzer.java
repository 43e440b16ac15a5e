package io.refldmseg.loader;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * What the loader's fuzz targets run. Each input becomes a checkpoint (a whole file, or one part
 * of a fixture spliced into the rest of it), which is opened, read and loaded as a UNet, a VAE
 * and a vision tower, config inference included. A {@link CheckpointException} is a clean
 * outcome; any other exception or error escapes and is a finding.
 */
public final class CheckpointFuzzer {
    private CheckpointFuzzer() {
    }

    /** What a target does with each network that loaded (the networks module builds it); must end cleanly or in a CheckpointException. */
    @FunctionalInterface
    public interface OnLoaded {
        void accept(Models.Loaded<?> loaded);
    }

    private static final OnLoaded NOTHING = m -> m.weights().parameterCount();

    /** Tensors up to this many elements are read in full (a fuzzed header may declare huge views of a small file). */
    private static final long READ_LIMIT = 1 << 20;
    private static final Path LABEL = Path.of("fuzzed-checkpoint");

    /** Safetensors fixtures whose data areas headers are spliced onto: the tower, the UNet, the VAE. */
    static final List<String> SAFETENSORS = List.of("alphaclip_visual.safetensors", "unet_diffusers.safetensors", "vae_diffusers.safetensors");
    /** Torch zip fixtures whose data.pkl is replaced: bf16 DeepSpeed UNet, Alpha-CLIP .pth. */
    static final List<String> TORCH = List.of("unet8_mp_rank_00_model_states.pt", "alphaclip_visual.pth");

    private static final Map<String, byte[]> DATA_AREAS = new LinkedHashMap<>();
    private static final Map<String, Map<String, byte[]>> ZIP_ENTRIES = new LinkedHashMap<>();

    /** input[0] picks a safetensors fixture; the rest is the JSON header placed before that fixture's data area. */
    static void safetensorsHeader(byte[] input) {
        safetensorsHeader(input, NOTHING);
    }

    public static void safetensorsHeader(byte[] input, OnLoaded onLoaded) {
        if (input.length < 1) return;
        String fixture = SAFETENSORS.get(Math.floorMod(input[0], SAFETENSORS.size()));
        byte[] header = java.util.Arrays.copyOfRange(input, 1, input.length);
        byte[] data = dataArea(fixture);
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        openAndLoad(b.putLong(header.length).put(header).put(data).array(), null, onLoaded);
    }

    /** input[0] picks a torch fixture; the rest replaces its data.pkl (every other entry kept). */
    static void torchPickle(byte[] input) {
        torchPickle(input, NOTHING);
    }

    public static void torchPickle(byte[] input, OnLoaded onLoaded) {
        if (input.length < 1) return;
        String fixture = TORCH.get(Math.floorMod(input[0], TORCH.size()));
        Map<String, byte[]> entries = new LinkedHashMap<>(zipEntries(fixture));
        String pkl = entries.keySet().stream().filter(n -> n.endsWith("data.pkl")).findFirst().orElseThrow();
        entries.put(pkl, java.util.Arrays.copyOfRange(input, 1, input.length));
        openAndLoad(zip(entries), null, onLoaded);
    }

    /** input[0] picks a safetensors fixture; the rest is the config.json its weights are loaded with. */
    static void config(byte[] input) {
        config(input, NOTHING);
    }

    public static void config(byte[] input, OnLoaded onLoaded) {
        if (input.length < 1) return;
        String fixture = SAFETENSORS.get(Math.floorMod(input[0], SAFETENSORS.size()));
        openAndLoad(read(fixture), new String(input, 1, input.length - 1, StandardCharsets.UTF_8), onLoaded);
    }

    /** The input is a whole checkpoint file. */
    static void wholeFile(byte[] input) {
        openAndLoad(input, null, NOTHING);
    }

    static void openAndLoad(byte[] file, String configJson, OnLoaded onLoaded) {
        TensorFile tf;
        try {
            tf = Checkpoints.openBytes(LABEL, file);
        } catch (CheckpointException clean) {
            return;
        }
        try {
            for (TensorData t : tf.tensors().values()) {
                if (t.numel() <= READ_LIMIT) {
                    t.toFloats();
                    t.contiguousBytes();
                }
                t.rank();
            }
            loadEach(tf, file, configJson, onLoaded);
        } catch (CheckpointException clean) {
            // refused with a message: fine
        } finally {
            tf.close();
        }
    }

    /** Models.* close the file they load from, so each network gets its own copy of the bytes. */
    private static void loadEach(TensorFile first, byte[] file, String configJson, OnLoaded onLoaded) {
        for (int network = 0; network < 3; network++) {
            TensorFile tf = network == 0 ? first : Checkpoints.openBytes(LABEL, file);
            try (Models.Loaded<?> m = switch (network) {
                case 0 -> Models.unet(tf, configJson);
                case 1 -> Models.vae(tf, configJson);
                default -> Models.clip(tf, configJson);
            }) {
                onLoaded.accept(m);
            } catch (CheckpointException clean) {
                // refused with a message: fine
            } finally {
                tf.close();
            }
        }
    }

    // ---- fixture parts ----

    private static final Map<String, byte[]> FILES = new LinkedHashMap<>();

    /** A fixture's bytes (read once; callers must not modify them). */
    static synchronized byte[] read(String fixture) {
        return FILES.computeIfAbsent(fixture, f -> {
            try {
                return Files.readAllBytes(Fixtures.file(f));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    static synchronized byte[] headerOf(String fixture) {
        byte[] all = read(fixture);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return java.util.Arrays.copyOfRange(all, 8, 8 + (int) n);
    }

    private static synchronized byte[] dataArea(String fixture) {
        return DATA_AREAS.computeIfAbsent(fixture, f -> {
            byte[] all = read(f);
            return java.util.Arrays.copyOfRange(all, 8 + headerOf(f).length, all.length);
        });
    }

    static synchronized Map<String, byte[]> zipEntries(String fixture) {
        return ZIP_ENTRIES.computeIfAbsent(fixture, f -> {
            Map<String, byte[]> out = new LinkedHashMap<>();
            try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(Fixtures.file(f).toFile())) {
                for (ZipEntry e : java.util.Collections.list(z.entries()))
                    try (InputStream in = z.getInputStream(e)) {
                        out.put(e.getName(), in.readAllBytes());
                    }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return out;
        });
    }

    /** A zip of stored (uncompressed) entries, as torch.save writes it. */
    public static byte[] zip(Map<String, byte[]> entries) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(bytes)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                ze.setMethod(ZipEntry.STORED);
                ze.setSize(e.getValue().length);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                ze.setCrc(crc.getValue());
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /**
     * A tiny torch.save-style archive by hand: {"w": float tensor [2, 2]} (protocol 2 pickle with
     * a persistent storage id and _rebuild_tensor_v2), the smallest seed for the whole-file target.
     */
    static byte[] tinyTorchZip() {
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        p.writeBytes(new byte[]{(byte) 0x80, 2, '}'});
        unicode(p, "w");
        p.writeBytes("ctorch._utils\n_rebuild_tensor_v2\n(".getBytes(StandardCharsets.ISO_8859_1));
        p.write('(');
        unicode(p, "storage");
        p.writeBytes("ctorch\nFloatStorage\n".getBytes(StandardCharsets.ISO_8859_1));
        unicode(p, "0");
        unicode(p, "cpu");
        p.writeBytes(new byte[]{'K', 4, 't', 'Q', 'K', 0, 'K', 2, 'K', 2, (byte) 0x86, 'K', 2, 'K', 1, (byte) 0x86, (byte) 0x89});
        p.writeBytes("ccollections\nOrderedDict\n)R".getBytes(StandardCharsets.ISO_8859_1));
        p.writeBytes(new byte[]{'t', 'R', 's', '.'});
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", p.toByteArray());
        ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 4; i++) data.putFloat(i + 1);
        entries.put("archive/data/0", data.array());
        return zip(entries);
    }

    private static void unicode(ByteArrayOutputStream p, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        p.write('X');
        p.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
        p.writeBytes(b);
    }

    /** A tiny safetensors file: two F32 tensors. */
    static byte[] tinySafetensors() {
        String h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[16,24]},"
                + "\"__metadata__\":{\"config\":\"{}\"}}";
        byte[] hb = h.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + hb.length + 24).order(ByteOrder.LITTLE_ENDIAN).putLong(hb.length).put(hb).array();
    }

    /** Seed inputs per target, from the fixtures: what the fuzzer starts mutating from. */
    static Map<String, List<byte[]>> seeds() {
        Map<String, List<byte[]>> out = new LinkedHashMap<>();
        List<byte[]> headers = new ArrayList<>(), configs = new ArrayList<>(), pickles = new ArrayList<>();
        for (int i = 0; i < SAFETENSORS.size(); i++) {
            headers.add(prefixed(i, headerOf(SAFETENSORS.get(i))));
            String meta = metadataConfig(SAFETENSORS.get(i));
            if (meta != null) configs.add(prefixed(i, meta.getBytes(StandardCharsets.UTF_8)));
        }
        configs.add(prefixed(0, "{\"width\": 32, \"layers\": 2, \"heads\": 2, \"patch_size\": 4}".getBytes(StandardCharsets.UTF_8)));
        for (int i = 0; i < TORCH.size(); i++) {
            byte[] pkl = zipEntries(TORCH.get(i)).entrySet().stream().filter(e -> e.getKey().endsWith("data.pkl")).findFirst().orElseThrow().getValue();
            pickles.add(prefixed(i, pkl));
        }
        out.put("safetensorsHeader", headers);
        out.put("torchPickle", pickles);
        out.put("config", configs);
        out.put("wholeFile", List.of(tinySafetensors(), tinyTorchZip()));
        return out;
    }

    private static String metadataConfig(String fixture) {
        try (TensorFile tf = TensorFile.open(Fixtures.file(fixture))) {
            return tf.metadata().get("config");
        }
    }

    private static byte[] prefixed(int selector, byte[] rest) {
        byte[] out = new byte[rest.length + 1];
        out[0] = (byte) selector;
        System.arraycopy(rest, 0, out, 1, rest.length);
        return out;
    }
}
