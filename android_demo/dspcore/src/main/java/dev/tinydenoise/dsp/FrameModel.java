package dev.tinydenoise.dsp;

/** One model step. The app implements it with LiteRT; tests replay Python's outputs. */
public interface FrameModel {
    /**
     * @param input     model input, bins x context frames, time fastest (current frame last)
     * @param statesIn  recurrent states from the previous frame (zeros after reset), spec order
     * @param statesOut filled with the states after this frame
     * @param maskOut   filled with the model output (bins)
     */
    void run(float[] input, float[][] statesIn, float[][] statesOut, float[] maskOut);
}
