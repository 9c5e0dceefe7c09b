package dev.tinydenoise.dsp;

/**
 * The runtime's post-filter gain, a port of runtime/dsp.py's WienerGain as postfilter_wiener()
 * sets it up from the spec: decision-directed Wiener gain over a minimum-statistics noise
 * estimate (by default eight sub-window minima of the smoothed periodogram over 1.5 s, bias
 * 1.5), floored (-20 dB by default); the first n_fft/hop - 1 frames (the stream's leading
 * zeros) pass with gain 1. update() returns that gain to the spec's power (the square root
 * by default), the factor that multiplies the model's mask bin by bin. No allocation per frame.
 */
public final class WienerGain {
    private static final double ALPHA_DD = 0.98, SMOOTH = 0.8, BIAS = 1.5;

    private final double floor, exponent;
    private final int bins, framesPerSlot, warmupFrames;
    private final double[][] slots;
    private final double[] smoothed, prevClean;
    private final float[] gain;
    private int t, warmup;

    public WienerGain(FeatureSpec spec) {
        bins = spec.nBins();
        floor = Math.pow(10, spec.postfilterFloorDb / 20);
        exponent = spec.postfilterExponent;
        int span = Math.max(1, (int) (spec.postfilterWindowS * spec.sampleRate / spec.hop));
        int count = Math.max(1, Math.min(spec.postfilterSubWindows, span));
        framesPerSlot = (span + count - 1) / count;
        warmupFrames = spec.nFft / spec.hop - 1;
        slots = new double[count][bins];
        smoothed = new double[bins];
        prevClean = new double[bins];
        gain = new float[bins];
        reset();
    }

    public void reset() {
        for (double[] s : slots) java.util.Arrays.fill(s, Double.POSITIVE_INFINITY);
        java.util.Arrays.fill(prevClean, 0.0);
        t = 0;
        warmup = warmupFrames;
    }

    /** The post-filter factor (the Wiener gain to the spec's power) for this frame's noisy magnitude (bins); a reused array. */
    public float[] update(float[] magnitude) {
        if (warmup > 0) {
            warmup--;
            java.util.Arrays.fill(gain, 1f);
            return gain;
        }
        int k = t / framesPerSlot;
        boolean first = t % framesPerSlot == 0;
        double[] slot = slots[k % slots.length];
        for (int b = 0; b < bins; b++) {
            double p = (double) magnitude[b] * magnitude[b];
            smoothed[b] = t == 0 ? p : SMOOTH * smoothed[b] + (1 - SMOOTH) * p;
            slot[b] = first ? smoothed[b] : Math.min(slot[b], smoothed[b]);
            double noise = Double.POSITIVE_INFINITY;
            for (double[] s : slots) noise = Math.min(noise, s[b]);
            noise = Math.max(noise * BIAS, 1e-12);
            double post = Math.max(p / noise - 1.0, 0.0);
            double prior = ALPHA_DD * prevClean[b] / noise + (1 - ALPHA_DD) * post;
            double g = Math.max(prior / (prior + 1.0), floor);
            gain[b] = (float) (exponent == 0.5 ? Math.sqrt(g) : exponent == 1.0 ? g
                    : exponent == 0.25 ? Math.sqrt(Math.sqrt(g)) : Math.pow(g, exponent));
            prevClean[b] = g * g * p;
        }
        t++;
        return gain;
    }
}
