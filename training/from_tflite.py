"""Turn a float32 CRNN .tflite exported by this toolkit back into a training run directory.

    python -m training.from_tflite runtime/models/crnn_float32.tflite --out runs/crnn_bundled
    python -m training.train --from runs/crnn_bundled --data data/my_mix --out runs/crnn_mine

So a user can fine-tune the bundled model on their own speech and noise without the run it
came from. The exported graph has each batch normalisation folded into its convolution;
here the folded kernel goes back into the convolution and the batch normalisation is set
to the statistics of the convolution's output on real features (``--calibrate DIR``, or
the toolkit's own example signal), so it computes the same function at inference and
close to it in training mode, where batch statistics replace the moving ones.
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
from runtime.model_file import make_interpreter, read_spec  # noqa: E402

BN_EPSILON = 1e-3  # Keras BatchNormalization's default


def _graph(path: Path):
    """(ops, constant tensors by index, {signature input name: tensor index}) of a .tflite."""
    interp, _ = make_interpreter(path, 1, raw_ops=True)
    ops = interp._get_ops_details()
    inputs = {d["index"] for d in interp.get_input_details()}
    consts = {}
    for d in interp.get_tensor_details():
        if d["index"] in inputs:
            continue
        try:
            consts[d["index"]] = np.array(interp.get_tensor(d["index"]))
        except ValueError:
            pass
    signatures = interp.get_signature_list()
    names = {}
    if signatures:
        runner = interp.get_signature_runner(next(iter(signatures)))
        names = {name: int(d["index"]) for name, d in runner.get_input_details().items()}
    return ops, consts, names


def crnn_weights(path: Path) -> tuple[dict, dict]:
    """(size, {layer: [arrays]}) of a float32 CRNN file, read off its op graph: the
    convolutions in order, then the projection, each LSTM's input and recurrent products
    (the recurrent one reads the LSTM's "h_in"/"h2_in" state input) and its bias, and the
    mask layer (the last FULLY_CONNECTED). With a lookahead ("look_in") the projection's
    rows are the delayed frame's, then the newest one's."""
    ops, consts, names = _graph(path)
    convs = [op for op in ops if op["op_name"] == "CONV_2D"]
    fcs = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"]
    if not convs or len(fcs) < 4 or any(op["op_name"] == "DEQUANTIZE" for op in ops) or "h_in" not in names:
        raise DenoiseError(f"{path}: not a float32 CRNN exported by export.to_tflite")

    def const(i):
        if int(i) not in consts:
            raise DenoiseError(f"{path}: tensor {i} is not a constant; is this a float32 CRNN?")
        return consts[int(i)]

    layers = {}
    for n, op in enumerate(convs):
        kernel = const(op["inputs"][1])  # (out, kh, kw, in) -> Keras (kh, kw, in, out)
        layers[f"enc{n}"] = (kernel.transpose(1, 2, 3, 0), const(op["inputs"][2]))
    lstms = ["lstm", "lstm2"] if "h2_in" in names else ["lstm"]
    recurrent = {}
    for lstm, state in zip(lstms, ("h_in", "h2_in")):
        recurrent[lstm] = next((op for op in fcs if int(op["inputs"][0]) == names[state]), None)
        if recurrent[lstm] is None:
            raise DenoiseError(f"{path}: no recurrent product reads {state}; is this a float32 CRNN?")
    # the others in graph order: projection, each LSTM's input product, the mask layer
    forward = [op for op in fcs if all(op is not r for r in recurrent.values())]
    if len(forward) != len(lstms) + 2:
        raise DenoiseError(f"{path}: {len(fcs)} matrix products do not make a CRNN with {len(lstms)} LSTM(s)")
    proj, mask = forward[0], forward[-1]
    layers["proj"] = [const(proj["inputs"][1]).T, const(proj["inputs"][2])]
    producer = {int(t): op for op in ops for t in op["outputs"]}
    for lstm, lstm_in in zip(lstms, forward[1:-1]):
        units = const(recurrent[lstm]["inputs"][1]).shape[1]
        mine = {id(lstm_in), id(recurrent[lstm])}
        bias = next((const(i) for op in ops if op["op_name"] == "ADD" for i in op["inputs"]
                     if int(i) in consts and consts[int(i)].shape == (4 * units,)
                     and _reaches(op, mine, producer)), None)
        if bias is None:
            raise DenoiseError(f"{path}: no bias found for {lstm}; is this a float32 CRNN?")
        layers[lstm] = [const(lstm_in["inputs"][1]).T, const(recurrent[lstm]["inputs"][1]).T, bias]
    layers["mask"] = [const(mask["inputs"][1]).T, const(mask["inputs"][2])]
    size = {"channels": [int(layers[f"enc{n}"][0].shape[-1]) for n in range(len(convs))],
            "proj": int(layers["proj"][0].shape[1]), "units": int(layers["lstm"][1].shape[0])}
    if "lstm2" in layers:
        size["units2"] = int(layers["lstm2"][1].shape[0])
    if "look_in" in names:  # the projection reads the delayed frame, then the newest one
        size["lookahead"] = 1
    if layers["mask"][0].shape[0] != size["units"] + size.get("units2", 0):
        raise DenoiseError(f"{path}: a CRNN with the input skip is not supported here")
    return size, layers


def _reaches(op, targets: set, producer: dict) -> bool:
    """Whether op's inputs lead back to one of the ops in targets (by id) through ADDs:
    which LSTM a gate bias belongs to, however the converter ordered the gate sums."""
    seen, todo = set(), [op]
    while todo:
        node = todo.pop()
        if id(node) in targets:
            return True
        if id(node) in seen or (node is not op and node["op_name"] != "ADD"):
            continue
        seen.add(id(node))
        todo += [producer[int(t)] for t in node["inputs"] if int(t) in producer]
    return False


def calibration_features(spec, data_dir: str | None, seconds: float = 60.0) -> np.ndarray:
    """Normalised features (frames, bins) of real noisy audio: a manifest's noisy files, or
    the example signal of runtime.example_audio."""
    from runtime import dsp
    from runtime.audio_io import read_audio, resample

    audio = []
    if data_dir:
        from .pipeline import read_manifest

        for row in read_manifest(data_dir, "train")[:64]:
            x, rate = read_audio(row["noisy"])
            audio.append(resample(x, rate, spec.sample_rate))
            if sum(map(len, audio)) > seconds * spec.sample_rate:
                break
    else:
        from runtime.example_audio import noisy_example

        audio.append(noisy_example(spec.sample_rate, seconds)[0])
    feats = [dsp.features(np.abs(dsp.stft(x, spec)), spec) for x in audio]
    return np.concatenate(feats).astype(np.float32)


def to_run(model_path, out_dir, calibrate: str | None = None) -> Path:
    """Write RUN_DIR (spec.json, config.json, best/last.weights.h5) for the model file."""
    import tf_keras as keras

    from .models import build, macs_per_frame
    from .run_dir import write_run

    model_path, out = Path(model_path), Path(out_dir)
    spec = read_spec(model_path)
    if spec.model_kind != "crnn":
        raise DenoiseError(f"{model_path}: a {spec.model_kind} model; only CRNN files can be converted")
    if (out / "config.json").exists():
        raise DenoiseError(f"{out} already holds a run; choose another --out")
    size, weights = crnn_weights(model_path)
    model = build("crnn", spec, **size)
    feats = calibration_features(spec, calibrate)[None]
    for n in range(len(size["channels"])):  # in order: each probe runs through the ones set
        conv, bn = model.get_layer(f"enc{n}_conv"), model.get_layer(f"enc{n}_bn")
        kernel, bias = weights[f"enc{n}"]
        conv.set_weights([kernel])
        y = keras.Model(model.input, conv.output).predict(feats, verbose=0)
        mu = y.reshape(-1, y.shape[-1]).mean(0)
        var = y.reshape(-1, y.shape[-1]).var(0)
        # inference: sqrt(var+eps) * (y - mu) / sqrt(var+eps) + mu + bias = y + bias
        bn.set_weights([np.sqrt(var + BN_EPSILON), mu + bias, mu, var])
    for name in ("proj", "lstm", "lstm2", "mask"):
        if name in weights:
            model.get_layer(name).set_weights(weights[name])
    config = {"model": "crnn", "preset": None, "size": size, "qat": False, "from": str(model_path),
              "converted_from_tflite": True,
              "data": str(calibrate) if calibrate else None, "distortion_weight": 0.0, "residual_weight": 0.0,
              "postfilter_loss": "none", "parameters": int(model.count_params()),
              "macs_per_frame": macs_per_frame(model)}
    return write_run(out, spec, model, config)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.from_tflite",
                                description="Rebuild a training run directory from a float32 CRNN "
                                            ".tflite, so training.train --from can fine-tune it.")
    p.add_argument("model", help="float32 CRNN .tflite exported by export.to_tflite")
    p.add_argument("-o", "--out", required=True, help="run folder to create")
    p.add_argument("--calibrate", default=None, metavar="DIR",
                   help="manifest dir whose noisy files set the batch-normalisation statistics "
                        "(default: the toolkit's example signal)")
    args = p.parse_args(argv)
    try:
        out = to_run(args.model, args.out, args.calibrate)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"run written to {out}; fine-tune with: python -m training.train --from {out} --data DIR --out NEW")
    return 0


if __name__ == "__main__":
    sys.exit(main())
