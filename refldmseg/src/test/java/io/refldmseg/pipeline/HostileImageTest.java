package io.refldmseg.pipeline;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.*;

/** Images from strangers: refused from their header before anything large is decoded or allocated. */
public class HostileImageTest {
    @TempDir
    Path dir;

    /** A PNG whose header claims width x height (its pixel data is a stub: only the header is read). */
    public static byte[] pngHeader(int width, int height) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        chunk(out, "IHDR", ByteBuffer.allocate(13).putInt(width).putInt(height).put((byte) 8).put((byte) 2).put((byte) 0)
                .put((byte) 0).put((byte) 0).array());
        chunk(out, "IDAT", new byte[]{0x78, (byte) 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    static void chunk(ByteArrayOutputStream out, String type, byte[] data) {
        byte[] t = type.getBytes(StandardCharsets.US_ASCII);
        out.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(data);
        out.writeBytes(t);
        out.writeBytes(data);
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    @Test
    void hugeImagesAreRefusedFromTheirHeader() throws IOException {
        for (int side : new int[]{20000, 30000, 65535}) {
            Path p = Files.write(dir.resolve(side + ".png"), pngHeader(side, side));
            ImageFiles.ImageException e = assertThrows(ImageFiles.ImageException.class, () -> ImageFiles.readRgb(p));
            assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains("more than the limit"), e.getMessage());
            assertThrows(ImageFiles.ImageException.class, () -> ImageFiles.readLabels(p));
        }
    }

    @Test
    void theLimitIsConfigurable() throws IOException {
        Path small = dir.resolve("small.png");
        ImageFiles.writeMask(small, 40, 30, new byte[1200]);
        long before = ImageFiles.maxPixels();
        try {
            ImageFiles.setMaxPixels(1000);
            assertThrows(ImageFiles.ImageException.class, () -> ImageFiles.readLabels(small));
            ImageFiles.setMaxPixels(1200);
            assertEquals(40, ImageFiles.readLabels(small).width());
        } finally {
            ImageFiles.setMaxPixels(before);
        }
        assertThrows(IllegalArgumentException.class, () -> ImageFiles.setMaxPixels(0));
    }

    @Test
    void corruptPixelDataIsAnImageException() throws IOException {
        byte[] png = pngHeader(64, 64); // the IDAT stub holds no rows for 64 x 64
        Path p = Files.write(dir.resolve("corrupt.png"), png);
        ImageFiles.ImageException e = assertThrows(ImageFiles.ImageException.class, () -> ImageFiles.readRgb(p));
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    }

    @Test
    void optionsRefuseNonFiniteAndOutOfRangeValues() {
        Options d = Options.defaults();
        assertThrows(IllegalArgumentException.class, () -> d.withGuidance(Float.NaN, 1.5f));
        assertThrows(IllegalArgumentException.class, () -> d.withGuidance(7f, Float.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> d.withSteps(100000));
        assertThrows(IllegalArgumentException.class, () -> d.withIgnoreLabel(256));
        assertEquals(1000, d.withSteps(1000).steps());
    }
}
