package dev.tinydenoise.demo;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Minimal streaming writer for 16-bit mono PCM WAV; the header is patched on close. */
final class WavWriter {
    private WavWriter() {}

    static RandomAccessFile open(File file, int rate) throws IOException {
        RandomAccessFile f = new RandomAccessFile(file, "rw");
        f.setLength(0);
        ByteBuffer h = ByteBuffer.allocate(44).order(ByteOrder.LITTLE_ENDIAN);
        h.put("RIFF".getBytes()).putInt(36).put("WAVE".getBytes()).put("fmt ".getBytes())
                .putInt(16).putShort((short) 1).putShort((short) 1).putInt(rate).putInt(rate * 2)
                .putShort((short) 2).putShort((short) 16).put("data".getBytes()).putInt(0);
        f.write(h.array());
        return f;
    }

    static void append(RandomAccessFile f, float[] samples) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(samples.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float s : samples) b.putShort((short) Math.max(-32768, Math.min(32767, Math.round(s * 32767f))));
        f.write(b.array());
    }

    static void close(RandomAccessFile f) throws IOException {
        long data = f.length() - 44;
        ByteBuffer v = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        f.seek(4);
        f.write(v.putInt(0, (int) (data + 36)).array());
        f.seek(40);
        f.write(v.putInt(0, (int) data).array());
        f.close();
    }
}
