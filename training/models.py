"""Keras (tf-keras, Keras 2) model builders: CR-CED and a causal CRNN.

Both are written for tensorflow-model-optimization QAT: Conv -> BatchNorm -> ReLU, and
skip connections add activations, never a conv output that feeds two layers.
"""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras as keras  # noqa: E402
from tf_keras import layers  # noqa: E402

from runtime.spec import FeatureSpec  # noqa: E402

#: (filters, kernel height along frequency) of one CR-CED block, after Park & Lee (2017).
CR_CED_BLOCK = ((18, 9), (30, 5), (8, 9))

#: Power-law compression of magnitudes in the loss (|.|^0.3), shared with the magnitude output.
COMPRESSION = 0.3


class ExpandCompressed(layers.Layer):
    """|X|^0.3 -> |X|: lets a magnitude-target model predict compressed magnitudes (well
    scaled for training) while its output stays the linear magnitude the runtime expects."""

    def call(self, inputs):
        import tensorflow as tf

        return tf.pow(inputs, 1.0 / COMPRESSION)


def _output_activation(spec: FeatureSpec) -> str:
    """sigmoid for the bounded mask; softplus (a compressed magnitude >= 0) otherwise."""
    return "sigmoid" if spec.output_kind == "mask" else "softplus"


def _conv_bn_relu(x, filters, kernel, name, padding="same"):
    x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def cr_ced(spec: FeatureSpec, repeats: int = 5, batch_size: int | None = None,
           export_layout: bool = False, dense_head: bool = False) -> keras.Model:
    """Cascaded redundant convolutional encoder-decoder (CR-CED).

    Input (bins, context, 1): normalised log-magnitudes, time ascending. The first
    conv (9 x context) collapses the context frames; then ``repeats`` blocks of
    18/30/8 filters with heights 9/5/9 run along frequency; each block's 8-channel
    output is added to the previous block's (skip connections). A last conv spanning
    all bins gives a sigmoid mask (bins,). batch_size=1 gives a static-shape graph for
    export (no SHAPE/PACK ops around the final reshape).

    export_layout and dense_head build the same function laid out for fast TFLite
    kernels (``cr_ced_for_export``).
    """
    bins, ctx = spec.n_bins, spec.context_frames
    inp = layers.Input((bins, ctx, 1), batch_size=batch_size, name="context")
    if export_layout:
        x = layers.Reshape((bins, 1, ctx), name="frames_as_channels")(inp)  # same memory order
    else:
        half = CR_CED_BLOCK[0][1] // 2
        x = layers.ZeroPadding2D(((half, half), (0, 0)), name="pad_freq")(inp)
    skip = None
    for b in range(repeats):
        for j, (filters, height) in enumerate(CR_CED_BLOCK):
            if b == 0 and j == 0 and not export_layout:
                x = _conv_bn_relu(x, filters, (height, ctx), f"b{b}_{j}", padding="valid")
            else:
                x = _conv_bn_relu(x, filters, (height, 1), f"b{b}_{j}")
        if skip is not None:
            x = layers.Add(name=f"b{b}_skip")([x, skip])
        skip = x
    if dense_head:
        x = layers.Flatten(name="flatten_bins")(x)
        x = layers.Dense(bins, activation=_output_activation(spec), name="mask_dense")(x)
    else:
        x = layers.Conv2D(1, (bins, 1), padding="same", activation=_output_activation(spec),
                          name="mask_conv")(x)
    if spec.output_kind == "magnitude":
        x = ExpandCompressed(name="expand")(x)
    out = layers.Reshape((bins,), name="mask")(x)
    return keras.Model(inp, out, name="cr_ced_export" if export_layout else "cr_ced")


def cr_ced_for_export(spec: FeatureSpec, repeats: int = 5, dense_head: bool = False) -> keras.Model:
    """CR-CED computing the same function as ``cr_ced``, laid out for fast TFLite kernels
    (batch 1; copy weights in with ``copy_cr_ced_weights``).

    The context frames become the first conv's input channels: a (9 x 8) conv over one
    input channel is a (9 x 1) conv over eight, and XNNPACK's int8 conv is ~6x slower
    with one input channel (69 against 12 us here). With ``dense_head`` the last conv,
    one output channel over all 129 bins, is unrolled into its banded 1032 x 129 matrix,
    one FULLY_CONNECTED: 4 us in int8 against 44 us, for 133 KB more weights.
    """
    return cr_ced(spec, repeats, batch_size=1, export_layout=True, dense_head=dense_head)


def banded_matrix(kernel: np.ndarray) -> np.ndarray:
    """The (bins * channels, bins) matrix of a 'same'-padded (bins x 1) conv with one
    output channel, for inputs flattened bin-major (bin * channels + channel)."""
    height, _, channels, _ = kernel.shape
    bins = height
    half = (height - 1) // 2
    matrix = np.zeros((bins, channels, bins), kernel.dtype)
    for out_bin in range(bins):
        lo, hi = max(0, out_bin - half), min(bins, out_bin - half + height)
        matrix[lo:hi, :, out_bin] = kernel[lo - out_bin + half:hi - out_bin + half, 0, :, 0]
    return matrix.reshape(bins * channels, bins)


def _short_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def copy_cr_ced_weights(trained: keras.Model, target: keras.Model) -> None:
    """Load a trained ``cr_ced`` (float or tfmot QAT) into a ``cr_ced_for_export`` twin of
    the same kind, reshaping the first kernel and unrolling the head as needed. Every
    variable except tfmot's step counters must find its counterpart, or this raises."""
    prefix = "quant_" if any(l.name.startswith("quant_") for l in trained.layers) else ""
    source = {l.name: l for l in trained.layers}
    used = set()
    for layer in target.layers:
        name = layer.name.replace(f"{prefix}mask_dense", f"{prefix}mask_conv")
        variables = [v for v in layer.weights if _short_name(v) != "optimizer_step"]
        if not variables:
            continue
        if name not in source:  # tfmot's input quantizer gets a fresh name in each model
            name = next(l.name for l in trained.layers if type(l) is type(layer))
        src = {_short_name(v).removeprefix(name + "_"): v for v in source[name].weights}
        for var in variables:
            key = _short_name(var).removeprefix(layer.name + "_")
            value = src[key].numpy()
            if layer.name.endswith("mask_dense") and _short_name(var) == "kernel":
                value = banded_matrix(value)
            elif layer.name.endswith("mask_dense") and _short_name(var) == "bias":
                value = np.broadcast_to(value, var.shape)  # one conv bias, shared by all bins
            var.assign(value.reshape(var.shape))  # first conv: (9, 8, 1, 18) -> (9, 1, 8, 18)
            used.add(id(src[key]))
    left = [v.name for l in trained.layers for v in l.weights
            if _short_name(v) != "optimizer_step" and id(v) not in used]
    if left:
        raise ValueError(f"variables without a place in the export model: {left}")


def pooled_bands(spec: FeatureSpec, above_hz: float) -> np.ndarray:
    """(bins, bands) averaging matrix: bins up to ``above_hz`` kept one by one, the ones
    above averaged in bands two bins wide in the first octave above it, four in the next,
    and so on (roughly the ear's resolution, which coarsens with frequency)."""
    bins = spec.n_bins
    hz = np.arange(bins) * spec.sample_rate / spec.n_fft
    columns, b = [], 0
    while b < bins:
        width = 1 if hz[b] <= above_hz else 2 ** (int(np.floor(np.log2(hz[b] / above_hz))) + 1)
        column = np.zeros(bins)
        column[b:b + width] = 1.0
        columns.append(column / column.sum())
        b += width
    return np.stack(columns, axis=1).astype(np.float32)


def _crnn_graph(spec, frames, state_inputs, *, channels, proj, units, stream, input_skip=False,
                pool_above_hz=None, units2=0, lookahead=0):
    """Shared CRNN graph; frames is (batch, T, bins). Returns (mask, states): [h, c], or
    [h, c, h2, c2] with a second LSTM, then "look" with lookahead.

    lookahead > 0 delays the encoder output by that many frames and gives the projection
    the delayed frame and the newest one side by side: the mask at step t is for frame
    t - lookahead, made with that frame's past and the frames after it. Streaming, the
    delay line is a state ("look": the last ``lookahead`` encoder outputs, zeros at the
    start). The delayed frame's rows of the projection come first, so a causal model grows
    into it (grow_crnn starts the newest frame's rows at zero) computing what it did a hop
    later, after ``lookahead`` zero encoder frames at the start.

    units2 > 0 stacks a second LSTM of that many units on the first; the output layer sees
    both LSTMs' outputs side by side, so a one-LSTM model grows into it exactly (grow_crnn
    starts the second LSTM's rows of the output layer at zero).

    input_skip feeds the current frame's features to the output layer beside the LSTM
    output, so the mask can follow the frame's own fine spectral detail (harmonics, which
    the stride-2 encoder and the projection blur) against the LSTM's context.
    pool_above_hz averages the features above that frequency into widening bands
    (pooled_bands, a fixed, untrained layer) before the encoder, so the encoder and the
    projection see about half as many inputs; the mask keeps every bin."""
    if input_skip and lookahead:
        raise ValueError("the input skip feeds the newest frame to the mask, which a lookahead "
                         "applies to an older one: use one or the other")
    bins = spec.n_bins
    x = frames
    if pool_above_hz:
        pool = pooled_bands(spec, pool_above_hz)
        x = layers.Dense(pool.shape[1], use_bias=False, trainable=False, name="pool_bands",
                         kernel_initializer=keras.initializers.Constant(pool))(x)
    x = layers.Reshape((-1, x.shape[-1], 1), name="to_image")(x)
    for i, ch in enumerate(channels):
        # kernel height 1 along time: the encoder never looks at other frames
        x = layers.Conv2D(ch, (1, 5), strides=(1, 2), padding="same", use_bias=False,
                          name=f"enc{i}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i}_bn")(x)
        x = layers.ReLU(name=f"enc{i}_relu")(x)
    f_out = x.shape[2]
    width = f_out * channels[-1]
    x = layers.Reshape((-1, width), name="flatten_freq")(x)
    look_state = []
    if lookahead:
        x, look_state = _look_ahead(x, width, lookahead, state_inputs[-1] if state_inputs else None)
    x = layers.Dense(proj, activation="relu", name="proj")(x)
    lstm = layers.LSTM(units, return_sequences=True, return_state=True, unroll=stream,
                       name="lstm")
    x, h, c = lstm(x, initial_state=state_inputs[:2]) if state_inputs else lstm(x)
    states = [h, c]
    if units2:
        lstm2 = layers.LSTM(units2, return_sequences=True, return_state=True, unroll=stream,
                            name="lstm2")
        y, h2, c2 = lstm2(x, initial_state=state_inputs[2:4]) if state_inputs else lstm2(x)
        x = layers.Concatenate(name="stack")([x, y])
        states += [h2, c2]
    states += look_state
    if input_skip:
        x = layers.Concatenate(name="input_skip")([x, frames])
    if spec.output_kind == "magnitude":
        x = layers.Dense(bins, activation=_output_activation(spec), name="compressed")(x)
        return ExpandCompressed(name="mask")(x), states
    mask = layers.Dense(bins, activation="sigmoid", name="mask")(x)
    return mask, states


def _look_ahead(x, width, frames, past):
    """(the delayed and the newest encoder output side by side, [the new delay line state]).
    Training (past None): the sequence shifted by ``frames`` with zeros in front. Streaming:
    ``past`` (1, width) holds the previous encoder output (one frame, MAX_LOOKAHEAD_FRAMES)."""
    if past is None:
        delayed = layers.ZeroPadding1D((frames, 0), name="look_pad")(x)
        delayed = layers.Cropping1D((0, frames), name="look_delay")(delayed)
        return layers.Concatenate(name="lookahead")([delayed, x]), []
    if frames != 1:
        raise ValueError(f"the streaming delay line holds one frame, not {frames} "
                         f"(runtime.spec.MAX_LOOKAHEAD_FRAMES)")
    delayed = layers.Reshape((1, width), name="look_line")(past)  # the frame before the newest
    state = layers.Reshape((width,), name="look_state")(x)         # the next call's delayed frame
    return layers.Concatenate(name="lookahead")([delayed, x]), [state]


def encoder_width(spec: FeatureSpec, channels=(16, 16), pool_above_hz=None, **_) -> int:
    """Features per frame after the CRNN's encoder (the projection's input)."""
    n = pooled_bands(spec, pool_above_hz).shape[1] if pool_above_hz else spec.n_bins
    for _ in channels:
        n = -(-n // 2)  # stride 2, "same" padding
    return n * channels[-1]


CRNN_DEFAULTS = dict(channels=(16, 16), proj=128, units=128, input_skip=False, pool_above_hz=None,
                     units2=0, lookahead=0)

#: The layers keep_back_end carries over: what follows the projection.
BACK_END = ("lstm", "lstm2", "mask", "compressed")


def crnn_state_names(size: dict) -> list[str]:
    """The streaming CRNN's recurrent states in input order ("<name>_in" -> "<name>_out")."""
    cfg = {**CRNN_DEFAULTS, **size}
    return ["h", "c"] + (["h2", "c2"] if cfg["units2"] else []) + (["look"] if cfg["lookahead"] else [])


def keep_back_end(trained: keras.Model, fresh: keras.Model) -> None:
    """Load a trained CRNN's LSTM and output layer into ``fresh`` and leave its encoder
    and projection as initialised: a new front end (other input features, or the same
    ones re-learned as the control) fine-tuned onto a trained recurrent back end, so two
    front ends can be compared at a fraction of a run from scratch."""
    old = {l.name: l for l in trained.layers}
    for name in BACK_END:
        if name in old:
            try:
                fresh.get_layer(name).set_weights(old[name].get_weights())
            except ValueError as err:
                raise ValueError(f"{name}: the back ends differ ({err}); keep the run's --units "
                                 f"and --input-skip") from None


def grow_crnn(small: keras.Model, large: keras.Model, seed: int = 0, scale: float = 0.05) -> None:
    """Load a trained CRNN into a wider one (more projection and/or LSTM units, the same
    encoder, optionally the input skip, a second LSTM or a lookahead added) so that ``large`` computes exactly what
    ``small`` did.

    New units start with small random weights in and zero weights out: the old units
    never see them, so the function is unchanged, yet their outgoing weights get non-zero
    gradients at once. This turns extra capacity into a fine-tune instead of a new run.
    """
    rng = np.random.default_rng(seed)
    old, new = {l.name: l for l in small.layers}, {l.name: l for l in large.layers}
    added = set(new) - set(old)
    # a stacked second LSTM may be added (Keras initialises it; its output rows start at 0)
    if set(old) - set(new) or any(new[name].weights for name in added - {"lstm2"}):
        raise ValueError("the two models are not the same CRNN graph")
    # LSTM widths, for the output layer's rows (a CR-CED has none and never grows)
    old_units, new_units = (sum(m[n].weights[1].shape[0] for n in ("lstm", "lstm2") if n in m)
                            for m in (old, new))
    if "lstm2" in old and any(old[n].weights[1].shape != new[n].weights[1].shape
                              for n in ("lstm", "lstm2")):
        raise ValueError("a CRNN with a second LSTM can't grow its LSTMs")
    for name, layer in new.items():
        if name in added:
            continue
        src = [w.numpy() for w in old[name].weights]
        dst = [w.numpy() for w in layer.weights]
        if all(a.shape == b.shape for a, b in zip(src, dst)):
            layer.set_weights(src)
            continue
        if name == "proj":
            # rows: the (delayed) frame's encoder output, then the newest frame's when a
            # lookahead was added (zero: unheard at first); columns: old units, then new
            kernel, bias = dst[0] * 0, dst[1] * 0
            rows, cols = src[0].shape
            if kernel.shape[0] not in (rows, 2 * rows):
                raise ValueError(f"proj: {rows} inputs can't become {kernel.shape[0]}")
            kernel[:rows, :cols] = src[0]
            kernel[:, cols:] = rng.normal(0, scale, kernel[:, cols:].shape)
            bias[:len(src[1])] = src[1]
            layer.set_weights([kernel, bias])
        elif name == "lstm":
            layer.set_weights(_grow_lstm(*src, *[a.shape for a in dst], rng, scale))
        elif name == "mask" or name == "compressed":
            # rows: the first LSTM's units (then the second's, if any), then the skipped
            # input features if any; new rows are zero. A first LSTM that grew while a
            # second one was added keeps its old rows first: the second LSTM's rows follow
            # the first one's new width, and they are all new.
            kernel = np.zeros(dst[0].shape, dst[0].dtype)
            kernel[:old_units] = src[0][:old_units]
            skip_rows = src[0][old_units:]
            kernel[new_units:new_units + len(skip_rows)] = skip_rows
            layer.set_weights([kernel, src[1]])
        else:
            raise ValueError(f"layer {name} changed shape; only proj and the LSTM can grow")


def extend_band(narrow: keras.Model, wide: keras.Model) -> None:
    """Load a model trained on a narrow band into the same architecture on a wider one,
    where the wide grid has the same bin spacing (e.g. 256 points at 8 kHz into 512 points
    at 16 kHz: 31.25 Hz), so bin k means the same frequency in both.

    Convolutions along frequency carry over unchanged. The CRNN's projection keeps its
    rows for the old encoder positions and starts the new, higher ones at zero; its mask
    layer keeps the old bins' columns and starts each new bin as a copy of the old top
    bin. A CR-CED's all-bin output conv is embedded at the centre of the taller kernel.
    The wide model thus starts as the narrow one below the old Nyquist, with the upper
    band masked like the top of the old band, and training only has to learn the rest.
    """
    old = {l.name: l for l in narrow.layers}
    if set(old) != {l.name for l in wide.layers}:
        raise ValueError("the two models are not the same architecture")
    for layer in wide.layers:
        src = [w.numpy() for w in old[layer.name].weights]
        dst = [w.numpy() for w in layer.weights]
        if all(a.shape == b.shape for a, b in zip(src, dst)):
            layer.set_weights(src)
        elif layer.name == "proj":
            kernel = np.zeros_like(dst[0])
            kernel[:src[0].shape[0]] = src[0]  # flattened (frequency, channel): low rows first
            layer.set_weights([kernel, src[1]])
        elif layer.name in ("mask", "compressed"):
            (k_old, b_old), (k_new, b_new) = src, dst
            old_bins, new_bins = len(b_old), len(b_new)
            if k_old.shape[0] != k_new.shape[0]:
                raise ValueError("an input-skip CRNN cannot be band-extended")
            kernel = np.concatenate([k_old, np.repeat(k_old[:, -1:], new_bins - old_bins, 1)], 1)
            bias = np.concatenate([b_old, np.repeat(b_old[-1:], new_bins - old_bins)])
            layer.set_weights([kernel, bias])
        elif layer.name == "mask_conv":
            (k_old, b_old), (k_new, _) = src, dst
            kernel = np.zeros_like(k_new)
            start = (k_new.shape[0] - k_old.shape[0]) // 2  # odd heights: centres coincide
            kernel[start:start + k_old.shape[0]] = k_old
            layer.set_weights([kernel, b_old])
        else:
            raise ValueError(f"layer {layer.name} changed shape in a way band extension does not know")


def _grow_lstm(kernel, recurrent, bias, kernel_shape, recurrent_shape, bias_shape, rng, scale):
    """Keras LSTM weights (gates i, f, c, o side by side) with more inputs and units."""
    n_in, units = kernel.shape[0], recurrent.shape[0]
    new_in, new_units = kernel_shape[0], recurrent_shape[0]
    k = np.zeros(kernel_shape, kernel.dtype)
    r = np.zeros(recurrent_shape, recurrent.dtype)
    b = np.zeros(bias_shape, bias.dtype)
    for gate in range(4):
        o, n = slice(gate * units, (gate + 1) * units), gate * new_units
        k[:n_in, n:n + units] = kernel[:, o]          # old units: old inputs only
        r[:units, n:n + units] = recurrent[:, o]
        b[n:n + units] = bias[o]
        fresh = slice(n + units, n + new_units)       # new units: see everything
        k[:, fresh] = rng.normal(0, scale, (new_in, new_units - units))
        r[:, fresh] = rng.normal(0, scale, (new_units, new_units - units))
        b[fresh] = 1.0 if gate == 1 else 0.0          # forget-gate bias 1, as Keras does
    return [k, r, b]


def crnn(spec: FeatureSpec, **size) -> keras.Model:
    """Causal CRNN for training on sequences: (batch, T, bins) -> mask (batch, T, bins)."""
    cfg = {**CRNN_DEFAULTS, **size}
    frames = layers.Input((None, spec.n_bins), name="frames")
    mask, _ = _crnn_graph(spec, frames, None, stream=False, **cfg)
    return keras.Model(frames, mask, name="crnn")


def crnn_stream(spec: FeatureSpec, trained: keras.Model | None = None, **size) -> keras.Model:
    """One-frame CRNN with explicit LSTM state in and out, batch 1, for streaming export.

    Inputs: frame (1, 1, bins), then each state of ``crnn_state_names`` (h, c: (1, units);
    h2, c2: (1, units2) with a second LSTM; look: (1, lookahead x encoder_width) with a
    lookahead). Outputs: mask (1, 1, bins; the magnitude for
    an output_kind "magnitude" spec), then the states in the same order. Copies the
    weights of ``trained`` (same size arguments) when given.
    """
    cfg = {**CRNN_DEFAULTS, **size}
    frame = layers.Input((1, spec.n_bins), batch_size=1, name="frame")
    names = crnn_state_names(cfg)
    widths = {"h": cfg["units"], "c": cfg["units"], "h2": cfg["units2"], "c2": cfg["units2"],
              "look": cfg["lookahead"] * encoder_width(spec, **cfg)}
    widths = [widths[n] for n in names]
    state_in = [layers.Input((w,), batch_size=1, name=f"{n}_in") for n, w in zip(names, widths)]
    mask, states = _crnn_graph(spec, frame, state_in, stream=True, **cfg)
    state_out = [layers.Activation("linear", name=f"{n}_out")(s) for n, s in zip(names, states)]
    model = keras.Model([frame, *state_in], [mask, *state_out], name="crnn_stream")
    if trained is not None:
        model.set_weights(trained.get_weights())
    return model


def build(kind: str, spec: FeatureSpec, batch_size: int | None = None, **size) -> keras.Model:
    if kind == "cr-ced":
        return cr_ced(spec, batch_size=batch_size, **size)
    if kind == "crnn":
        return crnn(spec, **size)
    raise ValueError(f"unknown model kind {kind!r}")


def macs_per_frame(model: keras.Model) -> int:
    """Multiply-accumulates per output frame, counted from Conv2D, Dense and LSTM layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = layer.input_shape[-1]
            if model.name.startswith("crnn"):  # (batch, time, freq, ch): count one frame
                positions = layer.output_shape[2]
            else:  # CR-CED: (batch, freq, time, ch), time already collapsed to one
                positions = layer.output_shape[1] * layer.output_shape[2]
            total += positions * kh * kw * cin * layer.filters
        elif isinstance(layer, layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, layers.LSTM):
            units = layer.units
            total += 4 * units * (int(layer.input_shape[0][-1] if isinstance(layer.input_shape, list)
                                      else layer.input_shape[-1]) + units)
    return int(total)
