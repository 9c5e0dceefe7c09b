package dev.tinydenoise.demo;

import dev.tinydenoise.dsp.FeatureSpec;
import dev.tinydenoise.dsp.FrameModel;
import java.nio.MappedByteBuffer;
import java.util.HashMap;
import java.util.Map;
import org.tensorflow.lite.Interpreter;

/**
 * A denoiser .tflite run by LiteRT's Interpreter (org.tensorflow.lite.Interpreter from
 * com.google.ai.edge.litert:litert). CR-CED: run(input, output). CRNN: runSignature with the
 * names the spec promises ("frame", "NAME_in" -> "mask", "NAME_out").
 */
final class LiteRtFrameModel implements FrameModel, AutoCloseable {
    private final Interpreter interpreter;
    private final FeatureSpec spec;
    private final float[][][][] contextInput;   // (1, bins, ctx, 1) for CR-CED
    private final float[][] crCedOutput;        // (1, bins)
    private final float[][][] frameInput;       // (1, 1, bins) for the CRNN
    private final float[][][] crnnOutput;       // (1, 1, bins)
    private final String[] stateNames;
    private final float[][][] stateIn, stateOut; // (1, units) each
    private final Map<String, Object> inputs = new HashMap<>();
    private final Map<String, Object> outputs = new HashMap<>();

    LiteRtFrameModel(MappedByteBuffer model, FeatureSpec spec, int threads) {
        Interpreter.Options options = new Interpreter.Options().setNumThreads(threads);
        interpreter = new Interpreter(model, options);
        this.spec = spec;
        int bins = spec.nBins();
        contextInput = new float[1][bins][spec.contextFrames][1];
        crCedOutput = new float[1][bins];
        frameInput = new float[1][1][bins];
        crnnOutput = new float[1][1][bins];
        stateNames = spec.stateShapes.keySet().toArray(new String[0]);
        stateIn = new float[stateNames.length][][];
        stateOut = new float[stateNames.length][][];
        for (int k = 0; k < stateNames.length; k++) {
            int[] shape = spec.stateShapes.get(stateNames[k]);
            stateIn[k] = new float[shape[0]][shape[1]];
            stateOut[k] = new float[shape[0]][shape[1]];
            inputs.put(stateNames[k] + "_in", stateIn[k]);
            outputs.put(stateNames[k] + "_out", stateOut[k]);
        }
        inputs.put("frame", frameInput);
        outputs.put("mask", crnnOutput);
    }

    @Override
    public void run(float[] input, float[][] statesIn, float[][] statesOut, float[] maskOut) {
        int bins = spec.nBins(), ctx = spec.contextFrames;
        if (stateNames.length == 0) {
            for (int b = 0; b < bins; b++) {
                for (int t = 0; t < ctx; t++) contextInput[0][b][t][0] = input[b * ctx + t];
            }
            interpreter.run(contextInput, crCedOutput);
            System.arraycopy(crCedOutput[0], 0, maskOut, 0, bins);
            return;
        }
        System.arraycopy(input, 0, frameInput[0][0], 0, bins);
        for (int k = 0; k < stateNames.length; k++) {
            System.arraycopy(statesIn[k], 0, stateIn[k][0], 0, statesIn[k].length);
        }
        interpreter.runSignature(inputs, outputs);
        for (int k = 0; k < stateNames.length; k++) {
            System.arraycopy(stateOut[k][0], 0, statesOut[k], 0, statesOut[k].length);
        }
        System.arraycopy(crnnOutput[0][0], 0, maskOut, 0, bins);
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
