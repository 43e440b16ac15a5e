package io.refldmseg.loader;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * One regression test per class of hostile checkpoint found by the fuzzing campaign of issue 16:
 * each must end in one CheckpointException naming the file, never another exception.
 */
class HostileInputTest {
    @TempDir
    Path dir;

    Path write(String name, byte[] bytes) throws IOException {
        return Files.write(dir.resolve(name), bytes);
    }

    /** Opens, reads every tensor and loads every network from {@code p}: must fail cleanly with all {@code fragments}. */
    static void assertClean(Path p, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> {
            try (TensorFile tf = TensorFile.open(p)) {
                tf.tensors().values().forEach(TensorData::toFloats);
            }
            try (var m = Models.unet(p)) {
                fail("loaded " + m.config());
            }
        });
        assertTrue(e.getMessage().contains(p.toString()), "names the file: " + e.getMessage());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
    }

    @Test
    void shapeProductsThatOverflowAreRefusedNamingTheTensor() throws IOException {
        String h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}";
        assertClean(write("huge.safetensors", BadInputTest.withHeader(h, new byte[16])), "tensor 'w'", "overflows");
        String wrapsNegative = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3037000500,3037000500],\"data_offsets\":[0,16]}}";
        assertClean(write("wrap.safetensors", BadInputTest.withHeader(wrapsNegative, new byte[16])), "tensor 'w'", "overflows");
        String bytesOverflow = "{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,16]}}";
        assertClean(write("bytes.safetensors", BadInputTest.withHeader(bytesOverflow, new byte[16])), "tensor 'w'", "overflows");
    }

    @Test
    void moreElementsThanAJavaArrayIsAClearError() throws IOException {
        long n = (1L << 31) + 64; // a sparse file: nothing is written but the header
        String h = "{\"big\":{\"dtype\":\"U8\",\"shape\":[" + n + "],\"data_offsets\":[0," + n + "]}}";
        byte[] head = BadInputTest.withHeader(h, new byte[0]);
        Path p = write("big.safetensors", head);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(head.length + n);
        }
        try (TensorFile tf = TensorFile.open(p)) {
            TensorData t = tf.tensor("big");
            assertEquals(n, t.numel());
            CheckpointException e = assertThrows(CheckpointException.class, t::toFloats);
            assertTrue(e.getMessage().contains("'big'") && e.getMessage().contains("Java array"), e.getMessage());
            assertThrows(CheckpointException.class, () -> t.dim(1), "rank 1: no dimension 1");
        }
    }

    /** A torch archive like the fixture's but with data.pkl edited by {@code edit}. */
    Path torchWith(String name, java.util.function.UnaryOperator<String> edit) throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>(CheckpointFuzzer.zipEntries("alphaclip_visual.pth"));
        String pkl = entries.keySet().stream().filter(k -> k.endsWith("data.pkl")).findFirst().orElseThrow();
        entries.put(pkl, edit.apply(new String(entries.get(pkl), StandardCharsets.ISO_8859_1)).getBytes(StandardCharsets.ISO_8859_1));
        return write(name, CheckpointFuzzer.zip(entries));
    }

    /** The tiny hand-made archive {"w": [2, 2] floats} with its pickle bytes edited. */
    Path tinyTorchWith(String name, byte[] from, byte[] to) throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        try (java.util.zip.ZipInputStream z = new java.util.zip.ZipInputStream(new java.io.ByteArrayInputStream(CheckpointFuzzer.tinyTorchZip()))) {
            for (var e = z.getNextEntry(); e != null; e = z.getNextEntry()) entries.put(e.getName(), z.readAllBytes());
        }
        String pkl = new String(entries.get("archive/data.pkl"), StandardCharsets.ISO_8859_1);
        String f = new String(from, StandardCharsets.ISO_8859_1), t = new String(to, StandardCharsets.ISO_8859_1);
        assertTrue(pkl.contains(f), "pickle contains the bytes to replace");
        entries.put("archive/data.pkl", pkl.replace(f, t).getBytes(StandardCharsets.ISO_8859_1));
        return write(name, CheckpointFuzzer.zip(entries));
    }

    @Test
    void theTinyTorchSeedIsAValidCheckpoint() throws IOException {
        Path p = write("tiny.pt", CheckpointFuzzer.tinyTorchZip());
        try (TensorFile tf = TensorFile.open(p)) {
            assertArrayEquals(new float[]{1, 2, 3, 4}, tf.tensor("w").toFloats());
        }
    }

    @Test
    void pickleStorageSizesAndOffsetsThatWrapAreRefused() throws IOException {
        // storage numel K 4 -> LONG1 2^62: numel x 4 bytes wraps a long
        byte[] numel4 = {'K', 4, 't', 'Q'};
        byte[] huge = {(byte) 0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x40, 't', 'Q'};
        assertClean(tinyTorchWith("storage.pt", numel4, huge), "overflows");
        // storage offset K 0 -> -1 (BININT)
        byte[] offset0 = {'Q', 'K', 0};
        byte[] negative = {'Q', 'J', -1, -1, -1, -1};
        assertClean(tinyTorchWith("offset.pt", offset0, negative), "offset", "negative");
        // shape (2, 2) -> (2^32, 2^32): the product wraps
        byte[] shape = {'K', 2, 'K', 2, (byte) 0x86, 'K', 2, 'K', 1};
        byte[] wraps = {(byte) 0x8a, 5, 0, 0, 0, 0, 1, (byte) 0x8a, 5, 0, 0, 0, 0, 1, (byte) 0x86, 'K', 2, 'K', 1};
        assertClean(tinyTorchWith("shape.pt", shape, wraps), "tensor 'w'");
    }

    @Test
    void tuple1OverNoneIsData() throws IOException {
        // the requires_grad False becomes the 1-tuple (None,): a REDUCE argument, no NPE
        Path p = tinyTorchWith("tuple1.pt", new byte[]{(byte) 0x89}, new byte[]{'N', (byte) 0x85});
        try (TensorFile tf = TensorFile.open(p)) {
            assertEquals(4, tf.tensor("w").numel());
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void containersAsDictKeysAreRefusedWithoutHashingThem() throws IOException {
        // {["self-containing list"]: ...}: a list holding itself used as a key
        byte[] selfList = {(byte) 0x80, 2, '}', ']', 'q', 0, 'h', 0, 'a', 'K', 1, 's', '.'};
        Map<String, byte[]> entries = Map.of("archive/data.pkl", selfList);
        CheckpointException e = assertThrows(CheckpointException.class, () -> TensorFile.open(write("self.pt", CheckpointFuzzer.zip(entries))));
        assertTrue(e.getMessage().contains("unhashable"), e.getMessage());
        // a tuple of 60 levels, each holding the level below twice: 2^60 paths to hash
        java.io.ByteArrayOutputStream p = new java.io.ByteArrayOutputStream();
        p.writeBytes(new byte[]{(byte) 0x80, 2, '}', 'K', 1});
        for (int i = 0; i < 60; i++) p.writeBytes(new byte[]{'q', 0, 'h', 0, (byte) 0x86});
        p.writeBytes(new byte[]{'K', 1, 's', '.'});
        Map<String, byte[]> nested = Map.of("archive/data.pkl", p.toByteArray());
        e = assertThrows(CheckpointException.class, () -> TensorFile.open(write("nested.pt", CheckpointFuzzer.zip(nested))));
        assertTrue(e.getMessage().contains("dict key"), e.getMessage());
    }

    @Test
    void aDeclaredUncompressedSizeIsNotTrusted() throws IOException {
        // a deflated data.pkl whose central-directory entry claims 2 GiB uncompressed
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try (java.util.zip.ZipOutputStream z = new java.util.zip.ZipOutputStream(bytes)) {
            z.putNextEntry(new java.util.zip.ZipEntry("archive/data.pkl"));
            z.write(new byte[]{(byte) 0x80, 2, '}', '.'});
            z.closeEntry();
        }
        byte[] zip = bytes.toByteArray();
        ByteBuffer b = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = zip.length - 22; at >= 0; at--)
            if (b.getInt(at) == 0x02014b50) {
                b.putInt(at + 24, 0x7fffffff);
                break;
            }
        Path p = write("bomb.pt", zip);
        CheckpointException e = assertThrows(CheckpointException.class, () -> TensorFile.open(p));
        assertTrue(e.getMessage().contains("data.pkl") && e.getMessage().contains("uncompressed size"), e.getMessage());
    }

    @Test
    void aCheckpointTruncatedWhileMappedFailsWithAMessage() throws IOException {
        Path p = write("shrinks.safetensors", Files.readAllBytes(Fixtures.file("vae_diffusers.safetensors")));
        try (TensorFile tf = TensorFile.open(p)) {
            try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
                f.setLength(4096);
            }
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> tf.tensors().values().forEach(TensorData::toFloats));
            assertTrue(e.getMessage().contains("truncated or changed while it was open"), e.getMessage());
        }
    }

    @Test
    void tensorsOfTheWrongRankFailConfigInferenceCleanly() throws IOException {
        // conv_in.weight viewed as rank 1 and rank 2 with the same element count
        byte[] header = CheckpointFuzzer.headerOf("unet_diffusers.safetensors");
        byte[] all = Files.readAllBytes(Fixtures.file("unet_diffusers.safetensors"));
        byte[] data = java.util.Arrays.copyOfRange(all, 8 + header.length, all.length);
        String h = new String(header, StandardCharsets.UTF_8);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"conv_in.weight\":\\{\"dtype\":\"F32\",\"shape\":\\[(\\d+),(\\d+),(\\d+),(\\d+)\\]").matcher(h);
        assertTrue(m.find(), "fixture header has conv_in.weight");
        long n = 1;
        for (int i = 1; i <= 4; i++) n *= Long.parseLong(m.group(i));
        String rank1 = h.substring(0, m.start()) + "\"conv_in.weight\":{\"dtype\":\"F32\",\"shape\":[" + n + "]" + h.substring(m.end());
        String noConfig = rank1.replaceFirst("\"__metadata__\":\\{.*?\\}(,|(?=\\}$))", "");
        assertClean(write("rank1.safetensors", BadInputTest.withHeader(noConfig, data)), "conv_in.weight");
        assertClean(write("rank1_config.safetensors", BadInputTest.withHeader(rank1, data)), "conv_in.weight");
        // rank 2 passes config inference (it reads dims 0 and 1); the UNet's constructor refuses it (HostileNetworkTest)
    }

    static String unetConfig() {
        try (TensorFile tf = TensorFile.open(Fixtures.file("unet_diffusers.safetensors"))) {
            return tf.metadata().get("config");
        }
    }

    CheckpointException configFails(String json) {
        return assertThrows(CheckpointException.class, () -> {
            try (var m = Models.unet(TensorFile.open(Fixtures.file("unet_diffusers.safetensors")), json)) {
                fail("loaded " + m.config());
            }
        });
    }

    @Test
    void configValuesOfTheWrongTypeOrRangeNameTheKey() {
        String good = unetConfig();
        assertTrue(good.contains("\"norm_num_groups\": "), good);
        String[][] cases = {
                {"\"norm_num_groups\": \"8\"", "norm_num_groups"},
                {"\"norm_num_groups\": 0", "norm_num_groups"},
                {"\"norm_num_groups\": 9223372036854775808", "norm_num_groups"},
                {"\"norm_num_groups\": 4294967304", "norm_num_groups"},
                {"\"attention_head_dim\": 0", "attention_head_dim"},
                {"\"attention_head_dim\": \"x\"", "attention_head_dim"},
                {"\"block_out_channels\": null", "block_out_channels"},
                {"\"block_out_channels\": [16, \"a\"]", "block_out_channels[1]"},
                {"\"down_block_types\": [1, 2, 3, 4]", "down_block_types[0]"},
                {"\"norm_eps\": \"tiny\"", "norm_eps"},
                {"\"use_linear_projection\": 1", "use_linear_projection"},
                {"\"encoder_hid_dim\": []", "encoder_hid_dim"},
        };
        for (String[] c : cases) {
            String key = c[0].substring(1, c[0].indexOf('"', 1));
            String json = good.replaceFirst("\"" + key + "\": (\\[[^\\]]*\\]|[^,}]*)", java.util.regex.Matcher.quoteReplacement(c[0]));
            assertNotEquals(good, json, c[0]);
            CheckpointException e = configFails(json);
            assertTrue(e.getMessage().contains("'" + c[1]) || e.getMessage().contains(c[1]), c[0] + ": " + e.getMessage());
        }
        // null means "the default", as diffusers writes it for optional fields
        try (var m = Models.unet(TensorFile.open(Fixtures.file("unet_diffusers.safetensors")), good.replaceFirst("\"encoder_hid_dim\": [^,}]*", "\"encoder_hid_dim\": null"))) {
            assertEquals(0, m.config().encoderHidDim());
        }
    }

    @Test
    void clipConfigZeroesAreRefused() {
        for (String json : new String[]{"{\"patch_size\": 0}", "{\"heads\": 0}", "{\"width\": 0}", "{\"heads\": 3}", "{\"input_resolution\": 31}"}) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> {
                try (var m = Models.clip(TensorFile.open(Fixtures.file("alphaclip_visual.safetensors")), json)) {
                    fail("loaded " + m.config());
                }
            }, json);
            assertTrue(e.getMessage().contains("config field"), json + ": " + e.getMessage());
        }
    }

    /** A checkpoint may declare an empty tensor whose storage offset lies past its storage: it has no element to bound-check or read. */
    @Test
    void anEmptyTensorWithAnOffsetPastItsStorageReadsAsEmpty() {
        java.lang.foreign.MemorySegment storage = java.lang.foreign.MemorySegment.ofArray(new byte[16]);
        TensorData empty = new TensorData("x.pt", "w", DType.F32, new long[]{0, 2}, storage, 64, new long[]{2, 1});
        assertEquals(0, empty.toFloats().length);
        assertEquals(0, empty.toLongs().length);
        assertEquals(0, empty.contiguousBytes().byteSize());
        TensorData half = new TensorData("x.pt", "h", DType.F16, new long[]{0}, storage, 100, new long[]{1});
        assertEquals(0, half.toFloats().length);
    }
}
