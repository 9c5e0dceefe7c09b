package dev.tinydenoise.dsp;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The model's feature spec, parsed from the JSON that export.to_tflite embeds in the .tflite
 * (metadata "denoise_spec"). Mirrors runtime/spec.py; nothing here hard-codes 129, 8 or 64.
 */
public final class FeatureSpec {
    public static final int SUPPORTED_VERSION = 3;
    /** The most frames a model may look ahead (runtime/spec.py's MAX_LOOKAHEAD_FRAMES). */
    public static final int MAX_LOOKAHEAD_FRAMES = 1;

    public final int sampleRate;
    public final int nFft;
    public final int hop;
    public final String window;
    public final int contextFrames;
    public final double logEps;
    public final float[] featureMean;
    public final float[] featureStd;
    public final String outputKind;
    public final String modelKind;
    /** state name -> shape, in the spec's order; the model has "NAME_in" and "NAME_out". */
    public final Map<String, int[]> stateShapes;
    public final int version;
    /** Frames the model hears after the one its mask is for (spec "lookahead_frames", version 3). */
    public final int lookaheadFrames;
    /**
     * Run-time settings the model was trained and tuned with (spec "run_time", version 2;
     * runtime/spec.py's RUN_TIME_DEFAULTS when absent): attenuation limit in dB (NaN: none),
     * the post-filter on or off, and the Wiener gain's exponent, floor, window and sub-windows.
     */
    public final double minGainDb;
    public final boolean postfilter;
    public final double postfilterExponent, postfilterFloorDb, postfilterWindowS;
    public final int postfilterSubWindows;

    private FeatureSpec(Map<String, Object> m) {
        version = asInt(m.getOrDefault("version", 1));
        if (version > SUPPORTED_VERSION) {
            throw new IllegalArgumentException("model spec version " + version
                    + " is newer than this app understands (<= " + SUPPORTED_VERSION + ")");
        }
        sampleRate = asInt(require(m, "sample_rate"));
        nFft = asInt(require(m, "n_fft"));
        hop = asInt(require(m, "hop"));
        window = (String) m.getOrDefault("window", "hamming");
        contextFrames = asInt(m.getOrDefault("context_frames", 1));
        logEps = ((Number) m.getOrDefault("log_eps", 1e-4)).doubleValue();
        outputKind = (String) m.getOrDefault("output_kind", "mask");
        modelKind = (String) m.getOrDefault("model_kind", "cr-ced");
        lookaheadFrames = asInt(m.getOrDefault("lookahead_frames", 0));
        if (lookaheadFrames < 0 || lookaheadFrames > MAX_LOOKAHEAD_FRAMES) {
            throw new IllegalArgumentException("lookahead_frames must be 0.." + MAX_LOOKAHEAD_FRAMES
                    + ", got " + lookaheadFrames);
        }
        int bins = nBins();
        featureMean = stats(m.get("feature_mean"), bins, 0f);
        featureStd = stats(m.get("feature_std"), bins, 1f);
        stateShapes = new LinkedHashMap<>();
        Object states = m.get("state_shapes");
        if (states instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) states).entrySet()) {
                List<?> dims = (List<?>) e.getValue();
                int[] shape = new int[dims.size()];
                for (int i = 0; i < shape.length; i++) shape[i] = asInt(dims.get(i));
                stateShapes.put((String) e.getKey(), shape);
            }
        }
        Object rt = m.get("run_time");
        Map<?, ?> run = rt instanceof Map ? (Map<?, ?>) rt : java.util.Collections.emptyMap();
        Object limit = run.containsKey("min_gain_db") ? run.get("min_gain_db") : -20.0;
        minGainDb = limit == null ? Double.NaN : ((Number) limit).doubleValue();
        Object kind = run.containsKey("postfilter") ? run.get("postfilter") : "wiener";
        if (!"wiener".equals(kind) && !"none".equals(kind)) {
            throw new IllegalArgumentException("unknown post-filter " + kind);
        }
        postfilter = "wiener".equals(kind);
        postfilterExponent = number(run, "postfilter_exponent", 0.5);
        postfilterFloorDb = number(run, "postfilter_floor_db", -20.0);
        postfilterWindowS = number(run, "postfilter_window_s", 1.5);
        postfilterSubWindows = (int) number(run, "postfilter_sub_windows", 8);
        if (nFft % hop != 0) throw new IllegalArgumentException("hop must divide n_fft");
        if ((nFft & (nFft - 1)) != 0) throw new IllegalArgumentException("n_fft must be a power of two");
        if (!window.equals("hamming") && !window.equals("hann")) {
            throw new IllegalArgumentException("unknown window " + window);
        }
    }

    public static FeatureSpec fromJson(String json) {
        Object parsed = Json.parse(json);
        if (!(parsed instanceof Map)) throw new IllegalArgumentException("model spec must be a JSON object");
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) parsed;
        return new FeatureSpec(m);
    }

    public int nBins() { return nFft / 2 + 1; }

    /** Output delay of the stream against its input, in samples: the STFT's, plus a hop per frame of lookahead. */
    public int latencySamples() { return nFft - hop + lookaheadFrames * hop; }

    /** Number of floats in one model input: bins x context frames (time fastest). */
    public int modelInputSize() { return nBins() * contextFrames; }

    private static Object require(Map<String, Object> m, String key) {
        Object v = m.get(key);
        if (v == null) throw new IllegalArgumentException("model spec lacks " + key);
        return v;
    }

    private static int asInt(Object o) { return ((Number) o).intValue(); }

    private static double number(Map<?, ?> m, String key, double fallback) {
        Object v = m.get(key);
        return v == null ? fallback : ((Number) v).doubleValue();
    }

    /** The attenuation limit as a linear gain floor (0: no limit). */
    public float minGain() { return Double.isNaN(minGainDb) ? 0f : (float) Math.pow(10, minGainDb / 20); }

    /** Statistics are a JSON list or "f16:" + base64 of little-endian float16 values. */
    private static float[] stats(Object value, int bins, float fill) {
        float[] out = new float[bins];
        if (value == null || (value instanceof List && ((List<?>) value).isEmpty())) {
            java.util.Arrays.fill(out, fill);
            return out;
        }
        if (value instanceof String) {
            String s = (String) value;
            if (!s.startsWith("f16:")) throw new IllegalArgumentException("bad statistics encoding");
            ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(s.substring(4))).order(ByteOrder.LITTLE_ENDIAN);
            if (b.remaining() != 2 * bins) throw new IllegalArgumentException("statistics length mismatch");
            for (int i = 0; i < bins; i++) out[i] = halfToFloat(b.getShort());
            return out;
        }
        List<?> list = (List<?>) value;
        if (list.size() != bins) throw new IllegalArgumentException("statistics length mismatch");
        for (int i = 0; i < bins; i++) out[i] = ((Number) list.get(i)).floatValue();
        return out;
    }

    /** IEEE 754 binary16 to float (Java 17 has no Float.float16ToFloat). */
    static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0) {
            float v = mant * (1f / (1 << 24));  // subnormal: mant * 2^-24
            return sign != 0 ? -v : v;
        }
        if (exp == 31) return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }
}
