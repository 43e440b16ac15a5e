package io.refldmseg.loader;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;

import java.io.IOException;
import java.io.OutputStream;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

final class SafeTensorsWriter {
    private SafeTensorsWriter() {
    }

    static void write(Path path, Map<String, SafeTensors.WriteEntry> tensors, Map<String, String> metadata) throws IOException {
        StringWriter sw = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(sw)) {
            g.writeStartObject();
            if (!metadata.isEmpty()) {
                g.writeObjectFieldStart("__metadata__");
                for (var e : metadata.entrySet()) g.writeStringField(e.getKey(), e.getValue());
                g.writeEndObject();
            }
            long at = 0;
            for (var e : tensors.entrySet()) {
                SafeTensors.WriteEntry t = e.getValue();
                g.writeObjectFieldStart(e.getKey());
                g.writeStringField("dtype", t.dtype().name());
                g.writeArrayFieldStart("shape");
                for (long d : t.shape()) g.writeNumber(d);
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(at);
                g.writeNumber(at + t.bytes().length);
                g.writeEndArray();
                g.writeEndObject();
                at += t.bytes().length;
            }
            g.writeEndObject();
        }
        StringBuilder header = new StringBuilder(sw.toString());
        while ((header.length() + 8) % 8 != 0) header.append(' ');
        byte[] hb = header.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = Files.newOutputStream(path)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(hb.length).array());
            out.write(hb);
            for (SafeTensors.WriteEntry t : tensors.values()) out.write(t.bytes());
        }
    }
}
