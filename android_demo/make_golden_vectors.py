"""Golden vectors from the Python runtime for the Java DSP core's JVM tests.

    python android_demo/make_golden_vectors.py --out android_demo/build/golden [MODEL ...]

Per model, a folder with: model.tflite (the spec is read from it, as the app does),
input.f32 (audio), model_inputs.f32 (frames x bins*context, exactly what StreamDenoiser fed
the model), model_outputs.f32 (frames x bins), output.f32 (the concatenated stream output,
input length + latency samples) and meta.json. All little-endian float32.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.example_audio import noisy_example  # noqa: E402
from runtime.spec import RUN_TIME_DEFAULTS  # noqa: E402
from runtime.stream import MODELS_DIR, StreamDenoiser  # noqa: E402

#: A small stored model exported with run-time settings other than the defaults, so the
#: Java core is checked to read them from the file (tests/make_test_models.py).
NON_DEFAULT_SETTINGS_MODEL = ROOT / "tests" / "data" / "models" / "crnn16k_int8.tflite"
#: A small stored model with a one-frame lookahead: its masks go to the frame before the
#: newest, through the Java core's delay line, one hop later.
LOOKAHEAD_MODEL = ROOT / "tests" / "data" / "models" / "crnn-lookahead_int8.tflite"


class Recorder:
    """Wraps a model: records every input and output the stream exchanged with it."""

    def __init__(self, model):
        self.model, self.inputs, self.outputs = model, [], []
        self.spec, self.input_shape = model.spec, model.input_shape

    def reset(self):
        self.model.reset()

    def __call__(self, model_input):
        self.inputs.append(np.array(model_input, np.float32).reshape(-1))
        out = self.model(model_input)
        self.outputs.append(np.array(out, np.float32).reshape(-1))
        return out


def write(model_path: Path, out_dir: Path, seconds: float = 1.5) -> None:
    sd = StreamDenoiser(model_path)  # with the run-time settings the file carries
    rec = Recorder(sd.model)
    sd.model = rec
    audio, _ = noisy_example(sd.sample_rate, seconds, snr_db=5.0, seed=3)
    audio = audio.astype(np.float32)
    stream_out = np.concatenate([sd.process(audio), sd.flush()]).astype(np.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, out_dir / "model.tflite")
    audio.astype("<f4").tofile(out_dir / "input.f32")
    np.stack(rec.inputs).astype("<f4").tofile(out_dir / "model_inputs.f32")
    np.stack(rec.outputs).astype("<f4").tofile(out_dir / "model_outputs.f32")
    stream_out.astype("<f4").tofile(out_dir / "output.f32")
    (out_dir / "meta.json").write_text(json.dumps({
        "model": model_path.name, "kind": sd.spec.model_kind, "samples": len(audio),
        "frames": len(rec.inputs), "input_size": int(rec.inputs[0].size), "bins": sd.spec.n_bins,
        "latency": sd.latency_samples, "min_gain": sd.dsp.min_gain,
        "postfilter": sd.postfilter,
        "non_default": {**RUN_TIME_DEFAULTS, **sd.spec.run_time} != RUN_TIME_DEFAULTS}, indent=2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write golden vectors for the Java DSP core tests.")
    p.add_argument("models", nargs="*", help="models (default: the bundled ones, a small stored "
                                             "model with non-default run-time settings and one with "
                                             "a lookahead)")
    p.add_argument("-o", "--out", required=True, help="output folder (one subfolder per model)")
    args = p.parse_args(argv)
    models = [Path(m) for m in args.models] or [*sorted(MODELS_DIR.glob("*.tflite")), NON_DEFAULT_SETTINGS_MODEL,
                                                  LOOKAHEAD_MODEL]
    if not models:
        print(f"error: no models given and none bundled in {MODELS_DIR}", file=sys.stderr)
        return 1
    for m in models:
        # a model from elsewhere may share a bundled model's name
        target = Path(args.out) / (m.stem if m.parent == MODELS_DIR else f"other_{m.stem}")
        write(m, target)
        print(f"golden vectors for {m.name} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
