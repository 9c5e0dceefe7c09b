package dev.tinydenoise.dsp;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Random;
import org.junit.Test;

public class StreamCoreTest {
    static FeatureSpec spec(String extra) {
        return FeatureSpec.fromJson("{\"sample_rate\":8000,\"n_fft\":256,\"hop\":64,\"window\":\"hamming\","
                + "\"context_frames\":8,\"model_kind\":\"cr-ced\",\"version\":1" + extra + "}");
    }

    static final FrameModel ONES = (in, sIn, sOut, mask) -> java.util.Arrays.fill(mask, 1f);

    @Test
    public void identityModelReconstructsInputAfterLatency() {
        FeatureSpec s = spec("");
        float[] x = noise(5000, 1);
        float[] y = streamed(new StreamCore(s, ONES, 0f), x, 1234);
        assertEquals(x.length + s.latencySamples(), y.length);
        for (int i = 0; i < x.length; i++) assertEquals(x[i], y[i + s.latencySamples()], 1e-5);
    }

    static float[] noise(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = r.nextFloat() * 2 - 1;
        return x;
    }

    /** x through the core in two chunks split at {@code split}, then the flushed tail, as one array. */
    static float[] streamed(StreamCore core, float[] x, int split) {
        float[] a = core.process(x, 0, split);
        float[] b = core.process(x, split, x.length - split);
        float[] c = core.flush();
        float[] y = new float[a.length + b.length + c.length];
        System.arraycopy(a, 0, y, 0, a.length);
        System.arraycopy(b, 0, y, a.length, b.length);
        System.arraycopy(c, 0, y, a.length + b.length, c.length);
        return y;
    }

    /** A model whose mask for frame f is pseudo-random in f, told which frame its mask is for. */
    static FrameModel masksFor(int[] frame, int lookahead) {
        return (in, sIn, sOut, mask) -> {
            Random r = new Random(1000 + frame[0]++ - lookahead);  // the frame its mask is for
            for (int b = 0; b < mask.length; b++) mask[b] = r.nextFloat();
        };
    }

    @Test
    public void lookaheadAppliesEachMaskToTheFrameBeforeTheNewestOneHopLater() {
        FeatureSpec causal = spec(""), ahead = spec(",\"lookahead_frames\":1");
        assertEquals(192, causal.latencySamples());
        assertEquals(256, ahead.latencySamples());
        float[] x = noise(64 * 50, 3);
        float[] a = new StreamCore(causal, masksFor(new int[] {0}, 0), 0f).process(x);
        float[] b = new StreamCore(ahead, masksFor(new int[] {0}, 1), 0f).process(x);
        // the same masks on the same frames, one hop later
        for (int j = 0; j < 64; j++) assertEquals(0f, b[j], 0f);
        for (int i = 0; i + 64 < b.length; i++) assertEquals(a[i], b[i + 64], 1e-6);
        try {
            spec(",\"lookahead_frames\":2");
            throw new AssertionError("a two-frame lookahead was accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("lookahead_frames"));
        }
    }

    @Test
    public void identityModelWithLookaheadReconstructsInputAfterItsLatency() {
        FeatureSpec s = spec(",\"lookahead_frames\":1");
        float[] x = noise(3000, 2);
        float[] y = streamed(new StreamCore(s, ONES, 0f), x, 700);
        assertEquals(x.length + 256, y.length);
        for (int j = 0; j < 64; j++) assertEquals(0f, y[j], 0f);  // the delay line's empty frame
        for (int i = 0; i < x.length; i++) assertEquals(x[i], y[i + 256], 1e-5);
    }

    @Test
    public void recurrentStateIsHandedFromOneFrameToTheNextAndReset() {
        FeatureSpec s = spec(",\"state_shapes\":{\"h\":[1,3],\"c\":[1,3]}");
        final int[] frames = {0};
        FrameModel counter = (in, sIn, sOut, mask) -> {
            assertEquals(2, sIn.length);
            for (int k = 0; k < 2; k++) {
                for (int j = 0; j < 3; j++) {
                    assertEquals("state after " + frames[0] + " frames", frames[0] * (k + 1), sIn[k][j], 0f);
                    sOut[k][j] = sIn[k][j] + (k + 1);
                }
            }
            frames[0]++;
            java.util.Arrays.fill(mask, 1f);
        };
        StreamCore core = new StreamCore(s, counter, 0f);
        core.process(new float[64 * 5]);
        assertEquals(5, frames[0]);
        core.reset();
        frames[0] = 0;
        core.process(new float[64 * 2]);
        assertEquals(2, frames[0]);
    }

    @Test
    public void specParsesFloat16StatisticsAndRefusesNewerVersions() {
        // 1.0, -2.0 repeated as little-endian float16: 0x3C00, 0xC000
        byte[] raw = new byte[129 * 2];
        for (int i = 0; i < 129; i++) { raw[2 * i] = 0; raw[2 * i + 1] = (byte) (i % 2 == 0 ? 0x3C : 0xC0); }
        String b64 = java.util.Base64.getEncoder().encodeToString(raw);
        FeatureSpec s = spec(",\"feature_mean\":\"f16:" + b64 + "\"");
        assertEquals(1f, s.featureMean[0], 0f);
        assertEquals(-2f, s.featureMean[1], 0f);
        assertEquals(1f, s.featureStd[5], 0f);
        try {
            FeatureSpec.fromJson("{\"sample_rate\":8000,\"n_fft\":256,\"hop\":64,\"version\":99}");
            throw new AssertionError("a newer spec was accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("newer"));
        }
    }

    @Test(expected = IllegalArgumentException.class)
    public void nanInputIsRefused() {
        new StreamCore(spec(""), ONES, 0f).process(new float[] {0f, Float.NaN});
    }

    @Test
    public void halfFloatDecoding() {
        assertEquals(0.5f, FeatureSpec.halfToFloat((short) 0x3800), 0f);
        assertEquals(-0.0f, FeatureSpec.halfToFloat((short) 0x8000), 0f);
        assertEquals(65504f, FeatureSpec.halfToFloat((short) 0x7bff), 0f);
        assertEquals(5.9604645e-8f, FeatureSpec.halfToFloat((short) 0x0001), 0f);
        assertArrayEquals(new float[] {1f}, new float[] {FeatureSpec.halfToFloat((short) 0x3C00)}, 0f);
    }
}
