package dev.tinydenoise.demo;

import android.media.AudioFormat;
import android.media.AudioRecord;
import android.media.AudioTrack;
import android.media.MediaRecorder;
import dev.tinydenoise.dsp.StreamCore;
import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.util.Arrays;

/**
 * Microphone -> StreamCore -> speaker (and optionally a WAV file), on its own thread.
 * Reports mean and p99 frame latency and the real-time factor through {@link Listener}.
 */
final class AudioPipeline implements Runnable {
    interface Listener {
        void onStats(double meanUs, double p99Us, double realTimeFactor);
        void onError(String message);
    }

    private final StreamCore core;
    private final Listener listener;
    private final File wavOut;
    private volatile boolean running = true;
    private volatile boolean denoise = true;

    AudioPipeline(StreamCore core, Listener listener, File wavOut) {
        this.core = core;
        this.listener = listener;
        this.wavOut = wavOut;
    }

    void setDenoise(boolean on) { denoise = on; }

    void stop() { running = false; }

    @Override
    public void run() {
        int rate = core.spec().sampleRate;
        int hop = core.spec().hop;
        int minRec = AudioRecord.getMinBufferSize(rate, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_FLOAT);
        int minPlay = AudioTrack.getMinBufferSize(rate, AudioFormat.CHANNEL_OUT_MONO, AudioFormat.ENCODING_PCM_FLOAT);
        AudioRecord rec = null;
        AudioTrack track = null;
        RandomAccessFile wav = null;
        long[] frameNanos = new long[512];
        int statCount = 0;
        try {
            rec = new AudioRecord(MediaRecorder.AudioSource.VOICE_RECOGNITION, rate, AudioFormat.CHANNEL_IN_MONO,
                    AudioFormat.ENCODING_PCM_FLOAT, Math.max(minRec, hop * 16));
            track = new AudioTrack.Builder()
                    .setAudioFormat(new AudioFormat.Builder().setSampleRate(rate)
                            .setEncoding(AudioFormat.ENCODING_PCM_FLOAT)
                            .setChannelMask(AudioFormat.CHANNEL_OUT_MONO).build())
                    .setBufferSizeInBytes(Math.max(minPlay, hop * 16 * 4))
                    .setTransferMode(AudioTrack.MODE_STREAM)
                    .build();
            if (wavOut != null) wav = WavWriter.open(wavOut, rate);
            rec.startRecording();
            track.play();
            float[] in = new float[hop];
            while (running) {
                int n = rec.read(in, 0, in.length, AudioRecord.READ_BLOCKING);
                if (n <= 0) continue;
                float[] out = core.process(in, 0, n);  // keeps context and state even when bypassed
                if (out.length == 0) continue;
                frameNanos[statCount++ % frameNanos.length] = core.lastFrameNanos();
                float[] play = denoise ? out : Arrays.copyOf(in, n);
                track.write(play, 0, play.length, AudioTrack.WRITE_BLOCKING);
                if (wav != null) WavWriter.append(wav, play);
                if (statCount % Math.max(1, rate / hop) == 0) report(frameNanos, Math.min(statCount, frameNanos.length), hop, rate);
            }
        } catch (IOException | RuntimeException e) {
            listener.onError(e.getMessage());
        } finally {
            if (rec != null) { try { rec.stop(); } catch (IllegalStateException ignored) { } rec.release(); }
            if (track != null) { try { track.stop(); } catch (IllegalStateException ignored) { } track.release(); }
            if (wav != null) { try { WavWriter.close(wav); } catch (IOException ignored) { } }
        }
    }

    private void report(long[] nanos, int count, int hop, int rate) {
        long[] sorted = Arrays.copyOf(nanos, count);
        Arrays.sort(sorted);
        double mean = 0;
        for (long v : sorted) mean += v;
        mean /= count * 1e3;
        double p99 = sorted[Math.min(count - 1, (int) Math.ceil(0.99 * count) - 1)] / 1e3;
        listener.onStats(mean, p99, mean * 1e-6 / ((double) hop / rate));
    }
}
