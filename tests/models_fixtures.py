"""Session fixtures: small stored models (no TensorFlow needed), and tiny runs trained and
exported afresh for the training/export tier."""
from __future__ import annotations

from pathlib import Path

import pytest

STORED_MODELS = Path(__file__).resolve().parent / "data" / "models"


@pytest.fixture(scope="session")
def stored_models():
    """{(kind, quant): path} of the small models in tests/data/models ("crnn-stacked": a CRNN
    with two LSTMs; "crnn-lookahead": one that hears a frame past the one it masks; python -m
    tests.make_test_models rebuilds them), for tests of the runtime, CLI and benchmarks."""
    models = {(kind, quant): STORED_MODELS / f"{kind}_{quant}.tflite"
              for kind in ("cr-ced", "crnn", "crnn-stacked", "crnn-lookahead") for quant in ("float32", "int8")}
    missing = [str(p) for p in models.values() if not p.is_file()]
    if missing:
        pytest.fail(f"stored test models missing: {missing}; run python -m tests.make_test_models")
    return models


def train_args(kind, data, out, epochs=1, extra=()):
    return ["--model", kind, "--data", str(data), "--out", str(out), "--epochs", str(epochs),
            "--batch-size", "8", "--steps-per-epoch", "6", "--validation-steps", "2",
            "--seq-frames", "40", "--pesq-every", "0", "--jit", "off", "--verbose", "0",
            "--lr", "3e-3", *extra]


@pytest.fixture(scope="session")
def tiny_runs(tiny_mix, tmp_path_factory):
    """{kind: RUN_DIR} after two short epochs on the tiny corpus."""
    from training.train import main

    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for kind in ("cr-ced", "crnn"):
        out = root / kind
        assert main(train_args(kind, tiny_mix, out, epochs=2)) == 0
        runs[kind] = out
    return runs


@pytest.fixture(scope="session")
def exported(tiny_runs, tmp_path_factory):
    """{(kind, quant): (path, report)} for float32 and int8 exports of the tiny runs."""
    from export.to_tflite import export

    root = tmp_path_factory.mktemp("tflite")
    out = {}
    for kind, run in tiny_runs.items():
        for quant in ("float32", "int8"):
            path = root / f"{kind}_{quant}.tflite"
            out[(kind, quant)] = (path, export(run, quant, path))
    return out
