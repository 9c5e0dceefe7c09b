package dev.tinydenoise.dsp;

import java.util.Map;

/**
 * The streaming contract of runtime.StreamDenoiser: any chunk size in, the samples that became
 * final out; flush() returns the tail so the total is input length + latency; reset() forgets
 * everything, recurrent state included. The model is injected, so the JVM tests run without LiteRT.
 */
public final class StreamCore {
    private final FeatureSpec spec;
    private final FrameModel model;
    private final FrameProcessor dsp;
    private final float[] pending;
    private final float[] mask;
    private float[][] statesIn, statesOut;
    private int fill;
    private long samplesIn, samplesOut;
    private long lastFrameNanos;

    /** With the run-time settings the model's spec carries (attenuation limit, post-filter). */
    public StreamCore(FeatureSpec spec, FrameModel model) { this(spec, model, spec.minGain(), spec.postfilter); }

    /** The model alone, its gain limited to minGain from below. */
    public StreamCore(FeatureSpec spec, FrameModel model, float minGain) { this(spec, model, minGain, false); }

    /** postfilter: apply the Wiener post-filter to the model's gain, as the Python runtime does by default. */
    public StreamCore(FeatureSpec spec, FrameModel model, float minGain, boolean postfilter) {
        this.spec = spec;
        this.model = model;
        this.dsp = new FrameProcessor(spec, minGain, postfilter);
        pending = new float[spec.hop];
        mask = new float[spec.nBins()];
        int k = spec.stateShapes.size();
        statesIn = new float[k][];
        statesOut = new float[k][];
        int i = 0;
        for (Map.Entry<String, int[]> e : spec.stateShapes.entrySet()) {
            int size = 1;
            for (int d : e.getValue()) size *= d;
            statesIn[i] = new float[size];
            statesOut[i] = new float[size];
            i++;
        }
    }

    public FeatureSpec spec() { return spec; }

    public int latencySamples() { return spec.latencySamples(); }

    /** Wall time of the most recent frame (DSP + model), for the app's latency display. */
    public long lastFrameNanos() { return lastFrameNanos; }

    public void reset() {
        dsp.reset();
        for (float[] s : statesIn) java.util.Arrays.fill(s, 0f);
        for (float[] s : statesOut) java.util.Arrays.fill(s, 0f);
        fill = 0;
        samplesIn = 0;
        samplesOut = 0;
    }

    private void frame(float[] out, int outOffset) {
        long t0 = System.nanoTime();
        dsp.analyze(pending, 0);
        model.run(dsp.modelInput(), statesIn, statesOut, mask);
        float[][] swap = statesIn;  // this frame's output state is the next frame's input
        statesIn = statesOut;
        statesOut = swap;
        System.arraycopy(dsp.synthesize(mask), 0, out, outOffset, spec.hop);
        lastFrameNanos = System.nanoTime() - t0;
    }

    public float[] process(float[] chunk) { return process(chunk, 0, chunk.length); }

    public float[] process(float[] chunk, int offset, int length) {
        for (int i = offset; i < offset + length; i++) {
            if (!Float.isFinite(chunk[i])) throw new IllegalArgumentException("chunk contains NaN or Inf");
        }
        int hop = spec.hop;
        int frames = (fill + length) / hop;
        float[] out = new float[frames * hop];
        int pos = offset;
        for (int f = 0; f < frames; f++) {
            int take = hop - fill;
            System.arraycopy(chunk, pos, pending, fill, take);
            pos += take;
            fill = 0;
            frame(out, f * hop);
        }
        int rest = offset + length - pos;
        System.arraycopy(chunk, pos, pending, fill, rest);
        fill += rest;
        samplesIn += length;
        samplesOut += out.length;
        return out;
    }

    /** The remaining output, so that everything returned totals input length + latency; then reset(). */
    public float[] flush() {
        long need = samplesIn + latencySamples() - samplesOut;
        float[] tail = new float[(int) Math.max(need, 0)];
        int filled = 0;
        while (filled < tail.length) {
            float[] block = process(new float[spec.hop - fill]);
            int take = Math.min(block.length, tail.length - filled);
            System.arraycopy(block, 0, tail, filled, take);
            filled += take;
        }
        reset();
        return tail;
    }
}
