"""Session fixtures that train tiny runs and export them, shared by several test modules."""
from __future__ import annotations

import pytest


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
