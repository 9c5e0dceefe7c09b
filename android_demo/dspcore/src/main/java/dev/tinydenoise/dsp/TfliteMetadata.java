package dev.tinydenoise.dsp;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Reads a named metadata buffer from a TFLite flatbuffer (the spec travels inside the model),
 * with the same field slots as runtime/model_file.py.
 */
public final class TfliteMetadata {
    public static final String SPEC_NAME = "denoise_spec";
    private static final int MODEL_BUFFERS = 4, MODEL_METADATA = 6;

    private TfliteMetadata() {}

    /** The spec embedded in the model bytes; IllegalArgumentException if it has none. */
    public static FeatureSpec readSpec(ByteBuffer model) {
        byte[] json = find(model, SPEC_NAME);
        if (json == null) {
            throw new IllegalArgumentException("model has no '" + SPEC_NAME
                    + "' metadata; export it with python -m export.to_tflite");
        }
        return FeatureSpec.fromJson(new String(json, StandardCharsets.UTF_8));
    }

    public static byte[] find(ByteBuffer model, String name) {
        ByteBuffer b = model.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.limit() < 8 || b.get(4) != 'T' || b.get(5) != 'F' || b.get(6) != 'L' || b.get(7) != '3') {
            throw new IllegalArgumentException("not a TFLite flatbuffer");
        }
        int root = b.getInt(0);
        int[] buffers = vector(b, root, MODEL_BUFFERS);
        int[] meta = vector(b, root, MODEL_METADATA);
        for (int k = 0; k < meta[1]; k++) {
            int entry = meta[0] + 4 * k;
            int table = entry + b.getInt(entry);
            int[] nameVec = vector(b, table, 0);
            byte[] nameBytes = new byte[nameVec[1]];
            for (int j = 0; j < nameBytes.length; j++) nameBytes[j] = b.get(nameVec[0] + j);
            if (!new String(nameBytes, StandardCharsets.UTF_8).equals(name)) continue;
            int pos = field(b, table, 1);
            int index = pos < 0 ? 0 : b.getInt(pos);
            if (index >= buffers[1]) return null;
            int bEntry = buffers[0] + 4 * index;
            int bTable = bEntry + b.getInt(bEntry);
            int[] data = vector(b, bTable, 0);
            byte[] out = new byte[data[1]];
            for (int j = 0; j < out.length; j++) out[j] = b.get(data[0] + j);
            return out;
        }
        return null;
    }

    private static int field(ByteBuffer b, int table, int slot) {
        int vtable = table - b.getInt(table);
        int vtSize = b.getShort(vtable) & 0xffff;
        if (4 + 2 * slot >= vtSize) return -1;
        int off = b.getShort(vtable + 4 + 2 * slot) & 0xffff;
        return off == 0 ? -1 : table + off;
    }

    /** {start, length} of a vector field, {0, 0} if absent. */
    private static int[] vector(ByteBuffer b, int table, int slot) {
        int pos = field(b, table, slot);
        if (pos < 0) return new int[] {0, 0};
        int vec = pos + b.getInt(pos);
        return new int[] {vec + 4, b.getInt(vec)};
    }
}
