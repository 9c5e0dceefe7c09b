package dev.tinydenoise.dsp;

/**
 * Causal STFT analysis, normalised log-magnitude features, the context buffer and
 * overlap-add synthesis, one hop at a time; a port of runtime/dsp.py's FrameProcessor.
 * Frame i ends at input sample (i+1)*hop - 1; output lags input by n_fft - hop samples, plus
 * one hop per frame of the spec's lookahead: synthesis then masks the spectrum of the frame
 * that many frames before the one whose features the model last heard (a delay line).
 * No allocation per frame.
 */
public final class FrameProcessor {
    private final FeatureSpec spec;
    private final int n, hop, bins, ctx;
    private final float minGain;
    private final WienerGain postfilter;     // null: the model's mask alone
    private final double[] window, olaGain;
    private final float[] invStd, meanScaled;
    private final double[] frame, ola;
    private final double[] re, im;          // FFT work arrays (n)
    private final double[] specRe, specIm;  // current frame spectrum (bins)
    private final float[] magnitude;
    private final double[][] lineRe, lineIm; // lookahead delay line, oldest first (frames x bins)
    private final float[][] lineMag;
    private int unborn;                      // delay-line frames from before the signal: kept from the post-filter
    private final float[] context;          // bins x ctx, time fastest
    private final float[] output;
    private final Fft fft;

    public FrameProcessor(FeatureSpec spec, float minGain) { this(spec, minGain, false); }

    /** postfilter: multiply the model's gain by the Wiener post-filter's factor (runtime's default). */
    public FrameProcessor(FeatureSpec spec, float minGain, boolean postfilter) {
        this.spec = spec;
        this.postfilter = postfilter ? new WienerGain(spec) : null;
        this.n = spec.nFft;
        this.hop = spec.hop;
        this.bins = spec.nBins();
        this.ctx = spec.contextFrames;
        this.minGain = minGain;
        window = new double[n];
        for (int t = 0; t < n; t++) {
            double phase = 2 * Math.PI * t / n;  // periodic window
            window[t] = spec.window.equals("hann") ? 0.5 - 0.5 * Math.cos(phase) : 0.54 - 0.46 * Math.cos(phase);
        }
        olaGain = new double[hop];
        for (int j = 0; j < hop; j++) {
            double sum = 0;
            for (int k = j; k < n; k += hop) sum += window[k] * window[k];
            olaGain[j] = 1.0 / sum;
        }
        invStd = new float[bins];
        meanScaled = new float[bins];
        for (int b = 0; b < bins; b++) {
            invStd[b] = (float) (1.0 / Math.max(spec.featureStd[b], 1e-6));
            meanScaled[b] = (float) ((double) spec.featureMean[b] * invStd[b]);
        }
        frame = new double[n];
        ola = new double[n];
        re = new double[n];
        im = new double[n];
        specRe = new double[bins];
        specIm = new double[bins];
        magnitude = new float[bins];
        int look = spec.lookaheadFrames;
        lineRe = new double[look][bins];
        lineIm = new double[look][bins];
        lineMag = new float[look][bins];
        unborn = look;
        context = new float[bins * ctx];
        output = new float[hop];
        fft = new Fft(n);
    }

    public void reset() {
        java.util.Arrays.fill(frame, 0);
        java.util.Arrays.fill(ola, 0);
        java.util.Arrays.fill(context, 0);
        for (int i = 0; i < lineRe.length; i++) {
            java.util.Arrays.fill(lineRe[i], 0);
            java.util.Arrays.fill(lineIm[i], 0);
            java.util.Arrays.fill(lineMag[i], 0f);
        }
        unborn = lineRe.length;
        if (postfilter != null) postfilter.reset();
    }

    /** The model input for the current frame (bins x ctx, time fastest). Do not modify. */
    public float[] modelInput() { return context; }

    /** Shift in hop new samples from {@code src[offset..offset+hop)}; update features and context. */
    public void analyze(float[] src, int offset) {
        System.arraycopy(frame, hop, frame, 0, n - hop);
        for (int j = 0; j < hop; j++) frame[n - hop + j] = src[offset + j];
        for (int t = 0; t < n; t++) {
            re[t] = frame[t] * window[t];
            im[t] = 0;
        }
        fft.transform(re, im, false);
        for (int b = 0; b < bins; b++) {
            specRe[b] = re[b];
            specIm[b] = im[b];
            magnitude[b] = (float) Math.hypot(re[b], im[b]);
        }
        for (int b = 0; b < bins; b++) {
            int row = b * ctx;
            System.arraycopy(context, row + 1, context, row, ctx - 1);
            float logMag = (float) Math.log(magnitude[b] + spec.logEps);
            context[row + ctx - 1] = logMag * invStd[b] - meanScaled[b];
        }
        if (lineRe.length > 0) delay();
    }

    /** The new frame's spectrum and magnitude to the end of the delay line, the oldest frame's in their place. */
    private void delay() {
        double[] oldRe = lineRe[0], oldIm = lineIm[0];
        float[] oldMag = lineMag[0];
        for (int i = 1; i < lineRe.length; i++) {  // rotate the rows: no copying of bins
            lineRe[i - 1] = lineRe[i];
            lineIm[i - 1] = lineIm[i];
            lineMag[i - 1] = lineMag[i];
        }
        int last = lineRe.length - 1;
        for (int b = 0; b < bins; b++) {
            double r = oldRe[b], i = oldIm[b];
            float m = oldMag[b];
            oldRe[b] = specRe[b];
            oldIm[b] = specIm[b];
            oldMag[b] = magnitude[b];
            specRe[b] = r;
            specIm[b] = i;
            magnitude[b] = m;
        }
        lineRe[last] = oldRe;
        lineIm[last] = oldIm;
        lineMag[last] = oldMag;
    }

    /** Apply the model output to the current spectrum; returns hop final samples (reused array). */
    public float[] synthesize(float[] modelOut) {
        boolean magnitudeKind = spec.outputKind.equals("magnitude");
        // a frame the delay line held before the signal is silent, and the post-filter must
        // not take its zeros for the noise floor
        float[] factor = postfilter == null || unborn > 0 ? null : postfilter.update(magnitude);
        if (unborn > 0) unborn--;
        for (int b = 0; b < bins; b++) {
            double g = magnitudeKind ? modelOut[b] / Math.max(magnitude[b], 1e-12) : modelOut[b];
            if (factor != null) g *= factor[b];
            if (g < minGain) g = minGain;
            re[b] = specRe[b] * g;
            im[b] = specIm[b] * g;
        }
        for (int b = 1; b < n - bins + 1; b++) {  // Hermitian mirror for a real signal
            re[n - b] = re[b];
            im[n - b] = -im[b];
        }
        im[0] = 0;
        im[n / 2] = 0;
        fft.transform(re, im, true);
        for (int t = 0; t < n; t++) ola[t] += re[t] / n * window[t];
        for (int j = 0; j < hop; j++) output[j] = (float) (ola[j] * olaGain[j]);
        System.arraycopy(ola, hop, ola, 0, n - hop);
        java.util.Arrays.fill(ola, n - hop, n, 0.0);
        return output;
    }

    /** In-place iterative radix-2 complex FFT; inverse without the 1/n scale. */
    static final class Fft {
        private final int n;
        private final int[] rev;
        private final double[] cos, sin;

        Fft(int n) {
            this.n = n;
            rev = new int[n];
            int bits = Integer.numberOfTrailingZeros(n);
            for (int i = 0; i < n; i++) rev[i] = Integer.reverse(i) >>> (32 - bits);
            cos = new double[n / 2];
            sin = new double[n / 2];
            for (int i = 0; i < n / 2; i++) {
                cos[i] = Math.cos(2 * Math.PI * i / n);
                sin[i] = Math.sin(2 * Math.PI * i / n);
            }
        }

        void transform(double[] re, double[] im, boolean inverse) {
            for (int i = 0; i < n; i++) {
                int j = rev[i];
                if (j > i) {
                    double t = re[i]; re[i] = re[j]; re[j] = t;
                    t = im[i]; im[i] = im[j]; im[j] = t;
                }
            }
            double sign = inverse ? 1 : -1;
            for (int size = 2; size <= n; size <<= 1) {
                int half = size / 2, step = n / size;
                for (int start = 0; start < n; start += size) {
                    for (int k = 0; k < half; k++) {
                        double wr = cos[k * step], wi = sign * sin[k * step];
                        int a = start + k, b = a + half;
                        double xr = re[b] * wr - im[b] * wi;
                        double xi = re[b] * wi + im[b] * wr;
                        re[b] = re[a] - xr; im[b] = im[a] - xi;
                        re[a] += xr; im[a] += xi;
                    }
                }
            }
        }
    }
}
