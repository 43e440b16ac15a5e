package io.refldmseg.loader;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.function.Predicate;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A corpus of broken checkpoints generated from the good fixtures. Each must fail with one
 * CheckpointException whose message names the file and the field or tensor at fault.
 */
class BadInputTest {
    @TempDir
    static Path dir;
    static byte[] good;
    static String goodHeader;

    @BeforeAll
    static void readGood() throws IOException {
        good = Files.readAllBytes(Fixtures.file("alphaclip_visual.safetensors"));
        long n = ByteBuffer.wrap(good, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        goodHeader = new String(good, 8, (int) n, StandardCharsets.UTF_8);
    }

    static byte[] withHeader(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        return b.putLong(h.length).put(h).put(data).array();
    }

    static byte[] goodData() {
        return java.util.Arrays.copyOfRange(good, 8 + goodHeader.getBytes(StandardCharsets.UTF_8).length, good.length);
    }

    static Path write(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    static void assertFails(Path p, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> {
            try (TensorFile tf = TensorFile.open(p)) {
                tf.tensors().values().forEach(TensorData::toFloats);
            }
        });
        assertTrue(e.getMessage().contains(p.toString()), "message names the file: " + e.getMessage());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message contains '" + f + "': " + e.getMessage());
    }

    @Test
    void truncatedSafetensors() throws IOException {
        assertFails(write("trunc.safetensors", java.util.Arrays.copyOf(good, good.length - 100)), "tensor '", "past the data area");
        assertFails(write("tiny.safetensors", new byte[]{1, 2, 3}), "shorter than the 8-byte header");
        assertFails(write("trunc_header.safetensors", java.util.Arrays.copyOf(good, 200)), "runs past the end of the file");
    }

    @Test
    void lyingHeaderLength() throws IOException {
        byte[] b = good.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        assertFails(write("huge_header.safetensors", b), "header length", "not sane");
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -5);
        assertFails(write("negative_header.safetensors", b), "header length");
    }

    @Test
    void invalidJson() throws IOException {
        assertFails(write("json.safetensors", withHeader(goodHeader.substring(0, goodHeader.length() - 10), goodData())),
                "not valid JSON");
        assertFails(write("array.safetensors", withHeader("[1,2]", goodData())), "not a JSON object");
    }

    @Test
    void overlappingOffsets() throws IOException {
        String h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}";
        assertFails(write("overlap.safetensors", withHeader(h, new byte[24])), "'a'", "'b'", "overlap");
    }

    @Test
    void shapeDoesNotMatchBytes() throws IOException {
        String h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[0,32]}}";
        assertFails(write("shape.safetensors", withHeader(h, new byte[32])), "tensor 'w'", "needs 36 bytes");
        String neg = "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2,4],\"data_offsets\":[0,32]}}";
        assertFails(write("negshape.safetensors", withHeader(neg, new byte[32])), "tensor 'w'", "negative");
        String beyond = "{\"w\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}";
        assertFails(write("beyond.safetensors", withHeader(beyond, new byte[16])), "tensor 'w'", "past the data area");
    }

    @Test
    void unknownDtype() throws IOException {
        String h = "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}";
        assertFails(write("dtype.safetensors", withHeader(h, new byte[4])), "tensor 'w'", "unknown dtype 'F8_E4M3'");
        String missing = "{\"w\":{\"shape\":[4],\"data_offsets\":[0,16]}}";
        assertFails(write("nodtype.safetensors", withHeader(missing, new byte[16])), "tensor 'w'", "dtype missing");
    }

    @Test
    void missingTensorNamesFileAndKey() {
        try (var m = Models.unet(Fixtures.file("unet_diffusers.safetensors"))) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> m.weights().get("down_blocks.9.resnets.0.conv1.weight"));
            assertTrue(e.getMessage().contains("unet_diffusers.safetensors") && e.getMessage().contains("down_blocks.9.resnets.0.conv1.weight"),
                    e.getMessage());
        }
        CheckpointException e = assertThrows(CheckpointException.class, () -> Models.unet(Fixtures.file("vae_diffusers.safetensors")));
        assertTrue(e.getMessage().contains("no UNet weights recognised"), e.getMessage());
    }

    /** Rewrites a torch zip: entries filtered by {@code keep}, data.pkl transformed by {@code pkl}. */
    static Path rewriteZip(String name, Predicate<String> keep, java.util.function.UnaryOperator<byte[]> pkl) throws IOException {
        Path out = dir.resolve(name);
        try (java.util.zip.ZipFile zin = new java.util.zip.ZipFile(Fixtures.file("alphaclip_visual.pth").toFile());
             OutputStream os = Files.newOutputStream(out);
             ZipOutputStream zout = new ZipOutputStream(os)) {
            for (ZipEntry e : java.util.Collections.list(zin.entries())) {
                byte[] data;
                try (InputStream in = zin.getInputStream(e)) {
                    data = in.readAllBytes();
                }
                if (!keep.test(e.getName())) continue;
                if (e.getName().endsWith("data.pkl")) data = pkl.apply(data);
                zout.putNextEntry(new ZipEntry(e.getName()));
                zout.write(data);
                zout.closeEntry();
            }
        }
        return out;
    }

    static byte[] replace(byte[] data, String from, String to) {
        String s = new String(data, StandardCharsets.ISO_8859_1);
        assertTrue(s.contains(from), "pickle contains " + from);
        return s.replace(from, to).getBytes(StandardCharsets.ISO_8859_1);
    }

    @Test
    void pickleNamingOsSystemIsRefused() throws IOException {
        Path p = rewriteZip("evil.pth", n -> true, d -> replace(d, "collections\nOrderedDict\n", "os\nsystem\n"));
        assertFails(p, "refusing global 'os.system'");
        Path q = rewriteZip("evil2.pth", n -> true, d -> replace(d, "torch._utils\n_rebuild_tensor_v2\n", "builtins\neval\n"));
        assertFails(q, "refusing global 'builtins.eval'");
    }

    @Test
    void zipWithMissingDataEntry() throws IOException {
        Path p = rewriteZip("nodata.pth", n -> !n.endsWith("/data/3"), d -> d);
        assertFails(p, "zip has no data entry", "data/3", "tensor '");
    }

    @Test
    void truncatedZipAndPickle() throws IOException {
        byte[] b = Files.readAllBytes(Fixtures.file("alphaclip_visual.pth"));
        assertFails(write("trunc.pth", java.util.Arrays.copyOf(b, b.length / 2)), "zip");
        Path p = rewriteZip("truncpkl.pth", n -> true, d -> java.util.Arrays.copyOf(d, d.length / 2));
        assertFails(p, "data.pkl", "truncated");
    }

    @Test
    void missingFileAndDirectory() {
        assertFails(dir.resolve("nope.safetensors"), "no such file");
    }

    @Test
    void readingNeverModifiesTheCheckpoint() throws Exception {
        for (String f : new String[]{"sd_original_fp16.safetensors", "unet8_mp_rank_00_model_states.pt"}) {
            Path p = Fixtures.file(f);
            String before = sha256(p);
            long mtime = Files.getLastModifiedTime(p).toMillis();
            try (var m = Models.unet(p)) {
                m.weights().tensors().values().forEach(TensorData::toFloats);
            }
            assertEquals(before, sha256(p), f);
            assertEquals(mtime, Files.getLastModifiedTime(p).toMillis(), f);
        }
    }

    static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }

    /** A header of 384 bytes starts the file with 0x80, like a pickle: still a safetensors file. */
    @Test
    void headerLengthLookingLikeAPickleIsStillSafetensors() throws IOException {
        String h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        h = h + " ".repeat(384 - h.length());
        Path p = write("x80.safetensors", withHeader(h, new byte[4]));
        assertEquals((byte) 0x80, Files.readAllBytes(p)[0]);
        try (TensorFile tf = TensorFile.open(p)) {
            assertEquals(1, tf.tensor("w").numel());
        }
        byte[] legacy = {(byte) 0x80, 2, (byte) 0x8a, 10, 0x6c, (byte) 0xfc, (byte) 0x9c, 0x46, (byte) 0xf9, 0x20, 0x6a, (byte) 0xa8, 0x50, 0x19};
        assertFails(write("legacy.pt", legacy), "legacy (pre-1.6, non-zip) torch.save format");
    }

    @Test
    void roundTripWriter() throws IOException {
        Path p = dir.resolve("rt.safetensors");
        SafeTensors.write(p, java.util.Map.of("x", SafeTensors.WriteEntry.f32(new float[]{1, 2, 3, 4, 5, 6}, 2, 3)),
                java.util.Map.of("k", "v"));
        try (TensorFile tf = TensorFile.open(p)) {
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, tf.tensor("x").toFloats());
            assertEquals("v", tf.metadata().get("k"));
        }
    }
}
