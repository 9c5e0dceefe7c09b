package dev.tinydenoise.dsp;

/**
 * The runtime's post-filter gain, a port of runtime/dsp.py's WienerGain with the settings
 * of postfilter_wiener(): decision-directed Wiener gain over a minimum-statistics noise
 * estimate (eight sub-window minima of the smoothed periodogram over 1.5 s, bias 1.5),
 * floored at -20 dB; the first n_fft/hop - 1 frames (the stream's leading zeros) pass
 * with gain 1. update() returns the square root of that gain, the factor that multiplies
 * the model's mask bin by bin. No allocation per frame.
 */
public final class WienerGain {
    private static final double ALPHA_DD = 0.98, SMOOTH = 0.8, WINDOW_S = 1.5, BIAS = 1.5;
    private static final double FLOOR = Math.pow(10, -20.0 / 20);
    private static final int SUB_WINDOWS = 8;

    private final int bins, framesPerSlot, warmupFrames;
    private final double[][] slots;
    private final double[] smoothed, prevClean;
    private final float[] gain;
    private int t, warmup;

    public WienerGain(FeatureSpec spec) {
        bins = spec.nBins();
        int span = Math.max(1, (int) (WINDOW_S * spec.sampleRate / spec.hop));
        int count = Math.max(1, Math.min(SUB_WINDOWS, span));
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

    /** The post-filter factor (square root of the Wiener gain) for this frame's noisy magnitude (bins); a reused array. */
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
            double g = Math.max(prior / (prior + 1.0), FLOOR);
            gain[b] = (float) Math.sqrt(g);
            prevClean[b] = g * g * p;
        }
        t++;
        return gain;
    }
}
