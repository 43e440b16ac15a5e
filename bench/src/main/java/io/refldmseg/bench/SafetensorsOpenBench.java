package io.refldmseg.bench;

import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Opening a multi-GB safetensors file: a sparse file (no data blocks on disk) with SD-like tensor
 * count is created once; each invocation maps it, parses and validates the header and closes it.
 * The data is never read: {@link #checkNothingRead} asserts that no page of the mapping is resident.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class SafetensorsOpenBench {
    @Param({"4"})
    public int gigabytes;

    private Path file;

    @Setup(Level.Trial)
    public void makeSparseFile() throws IOException {
        file = Files.createTempFile("sparse-", ".safetensors");
        int tensors = 1100; // about as many as an SD1.5 UNet + VAE
        long per = ((long) gigabytes << 30) / tensors / 4 * 4;
        StringWriter h = new StringWriter();
        h.write("{\"__metadata__\":{\"note\":\"sparse benchmark file\"}");
        for (int i = 0; i < tensors; i++)
            h.write(String.format(",\"layer.%d.weight\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%d,%d]}", i, per / 4, i * per, (i + 1) * per));
        h.write("}");
        byte[] header = h.toString().getBytes(StandardCharsets.UTF_8);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
            raf.write(header);
            raf.setLength(8 + header.length + per * tensors); // sparse: no data blocks written
        }
        checkNothingRead();
    }

    @Benchmark
    public int open() {
        try (TensorFile tf = TensorFile.open(file)) {
            return tf.tensors().size();
        }
    }

    /** Opening must not fault in data pages: none of a tensor's bytes may be resident after open. */
    public void checkNothingRead() {
        try (TensorFile tf = TensorFile.open(file)) {
            TensorData t = tf.tensor("layer.500.weight");
            if (t.storage().isLoaded()) throw new IllegalStateException("opening read tensor data");
            System.out.printf("%n[bench] %s: %.1f GB, %d tensors, data resident after open: %s%n", file, Files.size(file) / 1e9,
                    tf.tensors().size(), t.storage().isLoaded());
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @TearDown(Level.Trial)
    public void delete() throws IOException {
        Files.deleteIfExists(file);
    }
}
