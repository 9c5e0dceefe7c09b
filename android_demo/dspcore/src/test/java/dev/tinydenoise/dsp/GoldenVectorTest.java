package dev.tinydenoise.dsp;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.Test;

/**
 * The Java core against the Python runtime: for every golden folder, it must build the same
 * model inputs and, fed Python's model outputs, produce the same audio, for several chunk sizes.
 */
public class GoldenVectorTest {
    static final double TOL = 1e-5;
    static final int[] CHUNKS = {1, 7, 64, 100, 333, 4000};

    static Path goldenRoot() {
        String dir = System.getProperty("golden.dir", "build/golden");
        return Paths.get(dir);
    }

    static float[] readF32(Path p) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static List<Path> cases() throws IOException {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(goldenRoot())) {
            s.filter(p -> Files.exists(p.resolve("meta.json"))).sorted().forEach(out::add);
        }
        return out;
    }

    /** Replays Python's per-frame outputs and checks the inputs the Java core built. */
    static final class ReplayModel implements FrameModel {
        final float[] inputs, outputs;
        final int inputSize, bins;
        int frame;
        double maxInputError;

        ReplayModel(float[] inputs, float[] outputs, int inputSize, int bins) {
            this.inputs = inputs; this.outputs = outputs; this.inputSize = inputSize; this.bins = bins;
        }

        @Override
        public void run(float[] input, float[][] statesIn, float[][] statesOut, float[] maskOut) {
            assertEquals(inputSize, input.length);
            for (int i = 0; i < inputSize; i++) {
                maxInputError = Math.max(maxInputError, Math.abs(input[i] - inputs[frame * inputSize + i]));
            }
            System.arraycopy(outputs, frame * bins, maskOut, 0, bins);
            frame++;
        }
    }

    @Test
    public void javaCoreMatchesPythonForEveryModelAndChunking() throws IOException {
        List<Path> cases = cases();
        assertTrue("no golden vectors in " + goldenRoot() + " (run make_golden_vectors.py)", cases.size() >= 2);
        List<String> kinds = new ArrayList<>();
        int nonDefault = 0;
        for (Path dir : cases) {
            FeatureSpec spec = TfliteMetadata.readSpec(ByteBuffer.wrap(Files.readAllBytes(dir.resolve("model.tflite"))));
            kinds.add(spec.modelKind);
            float[] audio = readF32(dir.resolve("input.f32"));
            float[] inputs = readF32(dir.resolve("model_inputs.f32"));
            float[] outputs = readF32(dir.resolve("model_outputs.f32"));
            float[] expected = readF32(dir.resolve("output.f32"));
            int inputSize = spec.modelInputSize();
            String meta = new String(Files.readAllBytes(dir.resolve("meta.json")));
            java.util.regex.Matcher mg = java.util.regex.Pattern.compile("\"min_gain\":\\s*([0-9.eE+-]+)").matcher(meta);
            assertTrue("meta.json lacks min_gain", mg.find());
            float minGain = Float.parseFloat(mg.group(1));
            assertTrue("meta.json lacks postfilter", meta.contains("\"postfilter\""));
            boolean postfilter = meta.matches("(?s).*\"postfilter\":\\s*\"wiener\".*");
            // Python ran each model with the settings its spec carries; the Java core must
            // read the same ones from the file
            assertEquals(dir + ": attenuation limit from the spec", minGain, spec.minGain(), 1e-7f);
            assertEquals(dir + ": post-filter from the spec", postfilter, spec.postfilter);
            if (meta.contains("\"non_default\": true")) nonDefault++;
            for (int chunk : CHUNKS) {
                ReplayModel model = new ReplayModel(inputs, outputs, inputSize, spec.nBins());
                StreamCore core = new StreamCore(spec, model);
                float[] got = new float[expected.length];
                int filled = 0;
                for (int i = 0; i < audio.length; i += chunk) {
                    float[] out = core.process(audio, i, Math.min(chunk, audio.length - i));
                    System.arraycopy(out, 0, got, filled, out.length);
                    filled += out.length;
                }
                float[] tail = core.flush();
                assertEquals(dir + " chunk " + chunk + ": output length", expected.length, filled + tail.length);
                System.arraycopy(tail, 0, got, filled, tail.length);
                assertEquals(dir + " chunk " + chunk + ": frames", inputs.length / inputSize, model.frame);
                assertTrue(dir + " chunk " + chunk + ": model input error " + model.maxInputError,
                        model.maxInputError <= TOL);
                assertArrayEquals(dir + " chunk " + chunk, expected, got, (float) TOL);
            }
        }
        assertTrue("need a CR-CED and a CRNN golden", kinds.contains("cr-ced") && kinds.contains("crnn"));
        assertTrue("need a golden of a model with non-default run-time settings", nonDefault > 0);
    }
}
