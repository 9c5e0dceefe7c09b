"""Quantization-aware training wrappers (tensorflow-model-optimization, Keras 2).

CR-CED is quantized whole. tfmot has no quantized LSTM, so for the CRNN every other
layer is annotated and the LSTM stays float during QAT; its int8 ranges come from the
representative dataset at conversion (post-training) on the unrolled one-frame model.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def quantize(model, kind: str):
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    q = tfmot.quantization.keras
    if kind == "cr-ced":
        return q.quantize_model(model)

    def annotate(layer):
        # the LSTM stays float; the streaming model's linear state pass-throughs (h_out,
        # c_out) are left alone so its weights line up with the sequence model's
        passthrough = isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] == "linear"
        # the lookahead's delay plumbing ("look_*") differs between the two graphs and only
        # moves values: left alone, so both models hold the same quantizer weights
        passthrough = passthrough or layer.name.startswith("look_")
        if isinstance(layer, (keras.layers.LSTM, keras.layers.InputLayer)) or passthrough:
            return layer
        return q.quantize_annotate_layer(layer)

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with q.quantize_scope():
        return q.quantize_apply(annotated)
