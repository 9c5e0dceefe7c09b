"""Convert a training run to .tflite with the FeatureSpec embedded, then check it against Keras.

    python -m export.to_tflite runs/cr_ced_qat --quant int8 --out cr_ced_int8.tflite

int8 is full-integer kernels with float32 model I/O (the QUANTIZE/DEQUANTIZE at the
edges cost less than doing the same in Python per frame), calibrated on real features
from a manifest directory. The CRNN is exported as a one-frame model with explicit
LSTM state tensors (h_in/c_in -> h_out/c_out, and h2_in/c2_in -> h2_out/c2_out for a
second, stacked LSTM), named in the spec's state_shapes; in its int8 export the convolutions and
every matrix product (all of its weights) are int8, while the LSTM cell's element-wise
ops (gates, cell state, tanh) stay float32 by default: an int8 cell state drifts from the
float one over hundreds of frames (measured: output SNR against Keras 8 dB with an int8
cell, 39 dB with a float cell, at the same speed). --lstm-cell int8 gives the fully
integer model.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from runtime.errors import DenoiseError  # noqa: E402
from runtime.model_file import SPEC_METADATA_NAME, TfliteDenoiserModel  # noqa: E402
from runtime.cli import parse_gain_db  # noqa: E402
from runtime.spec import POSTFILTER_KINDS, RUN_TIME_DEFAULTS, SPEC_VERSION  # noqa: E402

QUANT_MODES = ("float32", "float16", "dynamic", "int8")
#: TFLite ops of the unrolled LSTM cell (and the mask's sigmoid) kept float32 in the
#: CRNN int8 export unless --lstm-cell int8; they hold no weights.
LSTM_CELL_OPS = ("ADD", "MUL", "TANH", "LOGISTIC")
FLOAT_TOLERANCE = 1e-4


def embed_metadata(tflite_bytes: bytes, name: str, payload: bytes) -> bytes:
    """The flatbuffer with a named metadata buffer added (replacing one of the same name)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    data = np.frombuffer(payload, dtype=np.uint8)
    old = [m for m in (model.metadata or []) if m.name == name.encode()]
    meta = schema.MetadataT()
    meta.name = name
    if old:  # rewriting a spec (export.set_run_time): reuse its buffer, leave no orphan behind
        meta.buffer = old[0].buffer
        model.buffers[meta.buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        model.buffers.append(buffer)
        meta.buffer = len(model.buffers) - 1
    # CONVERSION_METADATA only records converter options; drop it with any older spec.
    model.metadata = [m for m in (model.metadata or [])
                      if m.name not in (name.encode(), b"CONVERSION_METADATA")] + [meta]
    # Tensor names are debugging aids worth kilobytes in a 40 KB model; signature keys,
    # which the runtime binds by, live elsewhere and stay.
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.name = b""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def calibration_audio(data_dir, spec, max_files: int = 16) -> list[np.ndarray]:
    """Noisy signals from a manifest directory (dev split first) for calibration and checks."""
    from runtime.audio_io import read_audio, resample
    from training.pipeline import read_manifest

    rows = read_manifest(data_dir, "dev") or read_manifest(data_dir)
    out = []
    for row in rows[:max_files]:
        audio, rate = read_audio(row["noisy"])
        out.append(resample(audio, rate, spec.sample_rate))
    if not out:
        raise DenoiseError(f"{data_dir}: no pairs to calibrate on")
    return out


def stream_examples(model, audio_list, spec, frames_per_file: int = 100000):
    """[(frame, [state, ...]), ...] from running the float one-frame CRNN over real audio;
    the states in the model's input order (training.models.crnn_state_names)."""
    from training.enhance import model_inputs

    examples = []
    shapes = [tuple(t.shape) for t in model.inputs[1:]]
    for audio in audio_list:
        _, feats = model_inputs(audio, spec)
        states = [np.zeros(shape, np.float32) for shape in shapes]
        for t in range(min(frames_per_file, feats.shape[1])):
            frame = feats[:, t:t + 1, :]
            examples.append((frame, states))
            _, *states = (np.asarray(v) for v in model([frame, *states], training=False))
    return examples


def _crnn_signature(model, state_names):
    """A concrete function whose signature names are the spec's ("frame" and "<state>_in"
    -> "mask" and "<state>_out", for each of state_names in the model's input order)
    whatever the Keras layers are called (QAT renames them)."""
    import tensorflow as tf

    shapes = [tuple(t.shape) for t in model.inputs]
    signature = [tf.TensorSpec(shapes[0], tf.float32, name="frame")]
    signature += [tf.TensorSpec(shape, tf.float32, name=f"{n}_in") for n, shape in zip(state_names, shapes[1:])]

    @tf.function(input_signature=signature)
    def serve(frame, *states):
        mask, *out = model([frame, *states], training=False)
        return {"mask": mask, **{f"{n}_out": v for n, v in zip(state_names, out)}}

    return serve.get_concrete_function()


def convert(keras_model, quant: str, representative=None, state_names=(),
            float_ops: tuple = ()) -> bytes:
    """The .tflite bytes; state_names: a streaming CRNN's states (empty for a CR-CED);
    float_ops (int8 only) names op types left unquantized."""
    import tensorflow as tf

    if state_names:
        conv = tf.lite.TFLiteConverter.from_concrete_functions(
            [_crnn_signature(keras_model, state_names)], keras_model)
    else:
        conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if quant == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        if float_ops:
            # selective quantization: calibrate once, then quantize all but float_ops
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops))
            debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_options=options)
            return debugger.get_nondebug_quantized_model()
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def export(run_dir, quant: str = "int8", out=None, calibration=None, weights: str = "best",
           lstm_cell: str = "float", dense_head: bool = False, run_time: dict | None = None) -> dict:
    """Write the .tflite and return a report (sizes, errors, ops). ``run_time``: settings the
    runtime applies to this model by default (runtime.spec.RUN_TIME_DEFAULTS' keys; the
    rest keep those defaults), all written into the spec."""
    from training.models import (build, copy_cr_ced_weights, cr_ced_for_export, crnn_state_names,
                                 crnn_stream, macs_per_frame)
    from training.run_dir import load_run

    from .inspect_ops import summary

    model, spec, cfg = load_run(run_dir, weights)
    run_time = {**RUN_TIME_DEFAULTS, **(run_time or {})}
    spec.replace(run_time=run_time)  # bad settings are refused before the slow conversion
    kind = cfg["model"]
    if dense_head and kind != "cr-ced":
        raise DenoiseError("--dense-head unrolls CR-CED's last convolution; this run is a CRNN")
    if quant == "int8" and spec.output_kind != "mask":
        raise DenoiseError(f"{run_dir} predicts magnitudes, which are unbounded: int8 needs the "
                           f"mask output (train with --target mask); export float32 or float16")
    size = cfg.get("size", {})
    if not (calibration or cfg.get("data")):
        raise DenoiseError(f"{run_dir} records no training data; pass --calibration DIR")
    audio = calibration_audio(calibration or cfg["data"], spec)
    float_model = build(kind, spec, **size)
    params = int(float_model.count_params())
    macs = macs_per_frame(float_model)
    if kind == "crnn":
        if cfg.get("qat"):
            from training.qat import quantize

            stream = quantize(crnn_stream(spec, **size), kind)
            stream.set_weights(model.get_weights())
        else:
            stream = crnn_stream(spec, model, **size)
        state_names = crnn_state_names(size)
        spec = spec.replace(state_shapes={n: [int(d) for d in t.shape] for n, t in
                                          zip(state_names, stream.inputs[1:])}, context_frames=1)
        examples = stream_examples(stream, audio, spec)

        def representative():
            for frame, states in examples:  # keyed by signature name: order is not defined
                yield {"frame": frame, **{f"{n}_in": v for n, v in zip(state_names, states)}}
        to_convert = stream
    else:
        from training.enhance import model_inputs

        state_names = []
        to_convert = cr_ced_for_export(spec, dense_head=dense_head)
        if cfg.get("qat"):
            from training.qat import quantize

            to_convert = quantize(to_convert, kind)
        copy_cr_ced_weights(model, to_convert)
        calib = np.concatenate([model_inputs(a, spec)[1][::4] for a in audio])

        def representative():
            for i in range(0, len(calib), max(1, len(calib) // 400)):
                yield [calib[i:i + 1]]
    float_ops = LSTM_CELL_OPS if kind == "crnn" and quant == "int8" and lstm_cell == "float" else ()
    info = {"parameters": params, "macs_per_frame": macs, "quant": quant,
            "qat": bool(cfg.get("qat")), "model": kind}
    if float_ops:
        info["float_ops"] = list(float_ops)
    if dense_head:
        info["dense_head"] = True
    spec = spec.replace(info=info, run_time=run_time, version=SPEC_VERSION)
    flat = convert(to_convert, quant, representative, state_names=state_names, float_ops=float_ops)
    flat = embed_metadata(flat, SPEC_METADATA_NAME, spec.to_json().encode())
    out = Path(out or Path(run_dir) / f"{kind.replace('-', '_')}_{quant}.tflite")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(flat)

    report = {"path": str(out), "bytes": len(flat), "parameters": params, "macs_per_frame": macs,
              "run_time": spec.run_time,
              "macs_per_second": macs * spec.sample_rate // spec.hop, **summary(out)}
    ref, got = compare_with_keras(model, out, spec, audio[:4])
    err = float(np.max(np.abs(ref - got)))
    report["max_abs_error"] = err
    # masks are <= 1; a magnitude output is checked relative to its own scale
    report["max_scaled_error"] = err / max(1.0, float(np.max(np.abs(ref))))
    report["output_snr_db"] = float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-30)))
    return report


def compare_with_keras(keras_model, tflite_path, spec, audio_list):
    """Masks from Keras (whole sequences) and from the .tflite run frame by frame."""
    from training.enhance import keras_mask, lookahead_inputs

    tfl = TfliteDenoiserModel(tflite_path)
    ref, got = [], []
    for audio in audio_list:
        _, mask = keras_mask(keras_model, audio, spec)
        ref.append(mask)
        tfl.reset()
        _, inputs = lookahead_inputs(audio, spec)
        if spec.model_kind == "crnn":
            frames = [inputs[0, t] for t in range(inputs.shape[1])]
        else:
            frames = list(inputs[..., 0])
        got.append(np.stack([tfl(f).copy() for f in frames])[spec.lookahead_frames:])
    return np.concatenate(ref), np.concatenate(got)


def add_run_time_arguments(parser, defaults: dict | None) -> None:
    """The run-time settings' options (RUN_TIME_DEFAULTS' keys). ``defaults=None``: an
    option not given is absent from the parsed namespace (export.set_run_time keeps the
    file's value)."""
    d = defaults or dict.fromkeys(RUN_TIME_DEFAULTS, argparse.SUPPRESS)
    shown = "the runtime default" if defaults is None else "%(default)s"
    g = parser.add_argument_group("run-time settings written into the spec (what the runtime applies "
                                  "to this model unless its caller overrides them)")
    g.add_argument("--min-gain-db", type=parse_gain_db, default=d.get("min_gain_db"),
                   metavar="DB|none", help=f"attenuation limit (default {shown})")
    g.add_argument("--postfilter", choices=POSTFILTER_KINDS, default=d.get("postfilter"),
                   help=f"post-filter (default {shown})")
    g.add_argument("--postfilter-exponent", type=float, default=d.get("postfilter_exponent"),
                   help=f"power of the Wiener gain (default {shown}; 0.5 is its square root)")
    g.add_argument("--postfilter-floor-db", type=float, default=d.get("postfilter_floor_db"),
                   help=f"floor of the Wiener gain in dB (default {shown})")
    g.add_argument("--postfilter-window-s", type=float, default=d.get("postfilter_window_s"),
                   help=f"span of the noise floor's minimum statistics in s (default {shown})")
    g.add_argument("--postfilter-sub-windows", type=int, default=d.get("postfilter_sub_windows"),
                   help=f"running minima over that span (default {shown})")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m export.to_tflite",
                                description="Convert a training run to .tflite with its spec embedded, "
                                            "and check the result against the Keras model.")
    p.add_argument("run_dir", help="RUN_DIR written by python -m training.train")
    p.add_argument("--quant", choices=QUANT_MODES, default="int8", help="default int8")
    p.add_argument("-o", "--out", default=None, help="output file (default RUN_DIR/<model>_<quant>.tflite)")
    p.add_argument("--calibration", default=None,
                   help="manifest directory with real audio for calibration/checks "
                        "(default: the run's training data)")
    p.add_argument("--weights", choices=["best", "last"], default="best")
    p.add_argument("--lstm-cell", choices=["float", "int8"], default="float",
                   help="CRNN int8 only: keep the LSTM cell's element-wise ops float32 (default; "
                        "no weights, no drift) or make the model fully integer")
    add_run_time_arguments(p, RUN_TIME_DEFAULTS)
    p.add_argument("--dense-head", action="store_true",
                   help="CR-CED only: unroll the last convolution (129 bins x 8 channels -> 129) "
                        "into one matrix product, ~40 us faster per frame in int8 here, for "
                        "133 KB more weights (the file is then ~180 KB instead of 47 KB)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        r = export(args.run_dir, args.quant, args.out, args.calibration, args.weights, args.lstm_cell,
                   args.dense_head, run_time={k: getattr(args, k) for k in RUN_TIME_DEFAULTS})
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {r['path']}")
    print(f"  run-time        {', '.join(f'{k} {v}' for k, v in r['run_time'].items())}")
    print(f"  size            {r['bytes'] / 1024:.1f} KB ({r['bytes']} bytes)")
    print(f"  parameters      {r['parameters']}")
    print(f"  MACs per frame  {r['macs_per_frame']} ({r['macs_per_second'] / 1e6:.1f} M per second of audio)")
    print(f"  ops             {', '.join(f'{k} x{v}' for k, v in sorted(r['ops'].items()))}")
    print(f"  all compute ops int8: {'yes' if r['all_compute_int8'] else 'no (' + ', '.join(r['non_int8_compute_ops']) + ')'}")
    print(f"  weight ops int8: {'yes' if r['weight_ops_int8'] else 'no'}")
    print(f"  vs Keras: max abs error {r['max_abs_error']:.2e}, output SNR {r['output_snr_db']:.1f} dB")
    if args.quant == "float32" and r["max_scaled_error"] > FLOAT_TOLERANCE:
        print(f"error: float32 export differs from Keras by {r['max_scaled_error']:.2e} > {FLOAT_TOLERANCE}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
