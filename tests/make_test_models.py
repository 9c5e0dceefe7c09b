"""Regenerate the small models stored in tests/data/models for the TensorFlow-free test tier.

    python -m tests.make_test_models            # all of them
    python -m tests.make_test_models crnn16k    # only the ones named

Trains a tiny CR-CED, a tiny CRNN (16 LSTM units) and a tiny CRNN with a second, stacked
LSTM (8 units; four recurrent states) and a tiny CRNN with a one-frame lookahead (its delay
line a fifth kind of state) at 8 kHz, and a tiny CRNN on the wide16k grid (exported with non-default run-time settings), for two short epochs on a corpus made in numpy (the tests' own tiny corpus),
and exports each as float32 and int8. The runtime,
CLI, benchmark and device tests load these files, so they run without TensorFlow; the
training/export tier (``pytest -m train``) builds fresh ones and checks the export path.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "models"
CRNN_SIZE = ["--units", "16", "--proj", "16", "--channels", "4,4"]
#: crnn16k carries run-time settings other than the defaults: the JVM golden test checks
#: that the Java core reads them from the file, the Python tests that StreamDenoiser does
NON_DEFAULT_RUN_TIME = {"min_gain_db": -25.0, "postfilter_exponent": 1.0, "postfilter_floor_db": -15.0,
                        "postfilter_window_s": 1.0, "postfilter_sub_windows": 4}


def make_corpus(root: Path) -> tuple[Path, Path]:
    """The same tiny corpus and mix as tests/conftest.py's fixtures, and a 16 kHz mix of it."""
    import numpy as np
    import soundfile as sf

    from runtime.example_audio import speech_like
    from training.make_dataset import MixConfig, make_dataset

    rng = np.random.default_rng(7)
    for spk in ("alice", "bob", "carol"):
        for i in range(3):
            path = root / "speech" / spk / f"{spk}_{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.concatenate([np.zeros(1600), speech_like(16000, 2.0, rng), np.zeros(2400)]), 16000)
    (root / "noise").mkdir()
    for i in range(3):
        noise = np.cumsum(rng.standard_normal(16000 * 3)) if i == 0 else rng.standard_normal(16000 * 3)
        sf.write(root / "noise" / f"noise_{i}.wav", noise / np.max(np.abs(noise)) * 0.3, 16000)
    cfg = MixConfig(sample_rate=8000, snr_min=0, snr_max=10, seconds=1.0, seed=3,
                    generated_noise=0.3, dev_fraction=0.34, group_regex="^([a-z]+)_")
    make_dataset([root / "speech"], [root / "noise"], root / "mix", 24, cfg, progress=False)
    cfg.sample_rate = 16000
    make_dataset([root / "speech"], [root / "noise"], root / "mix16k", 24, cfg, progress=False)
    return root / "mix", root / "mix16k"


MODELS = ("cr-ced", "crnn", "crnn-stacked", "crnn16k", "crnn-lookahead")


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m tests.make_test_models", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", choices=[[], *MODELS], default=list(MODELS),
                   help=f"models to rebuild (default all: {', '.join(MODELS)})")
    names = p.parse_args(argv).names or list(MODELS)
    from export.to_tflite import export
    from training.train import main as train_main

    from .models_fixtures import train_args

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        mix, mix16k = make_corpus(Path(tmp))
        for name, kind, data, extra in (("cr-ced", "cr-ced", mix, []), ("crnn", "crnn", mix, CRNN_SIZE),
                                        ("crnn-stacked", "crnn", mix, CRNN_SIZE + ["--units2", "8"]),
                                        ("crnn16k", "crnn", mix16k, CRNN_SIZE + ["--preset", "wide16k"]),
                                        ("crnn-lookahead", "crnn", mix, CRNN_SIZE + ["--lookahead", "1"])):
            if name not in names:
                continue
            run = Path(tmp) / name
            assert train_main(train_args(kind, data, run, epochs=2, extra=extra)) == 0
            for quant in ("float32", "int8"):
                export(run, quant, OUT / f"{name}_{quant}.tflite",
                       run_time=NON_DEFAULT_RUN_TIME if name == "crnn16k" else None)
    for p in sorted(OUT.glob("*.tflite")):
        print(f"{p.relative_to(OUT.parents[1])}: {p.stat().st_size / 1024:.1f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
