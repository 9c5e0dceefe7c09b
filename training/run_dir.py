"""The run directory format: what training.train writes and export/benchmarks read.

RUN_DIR holds spec.json (the feature spec with the normalisation measured on the training
set), config.json, best.weights.h5, last.weights.h5, history.csv, logs/ (TensorBoard) and
backup/ while a run is unfinished, and epochs/epoch_NNN.weights.h5 with --keep-epochs.
"""
from __future__ import annotations

import json
from pathlib import Path

from runtime.errors import DenoiseError
from runtime.spec import FeatureSpec


def build_run_model(run_dir):
    """(keras model as the run built it, untrained; spec; config) of RUN_DIR."""
    from .models import build

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise DenoiseError(f"{run_dir}: not a training run (no config.json)")
    cfg = json.loads(cfg_path.read_text())
    spec = FeatureSpec.from_json((run_dir / "spec.json").read_text())
    model = build(cfg["model"], spec, **cfg.get("size", {}))
    if cfg.get("qat"):
        from .qat import quantize

        model = quantize(model, cfg["model"])
    return model, spec, cfg


def load_run(run_dir, weights: str = "best"):
    """(keras model with weights, spec, config) of a finished run (float or QAT)."""
    run_dir = Path(run_dir)
    model, spec, cfg = build_run_model(run_dir)
    path = run_dir / f"{weights}.weights.h5"
    if not path.is_file():
        raise DenoiseError(f"{run_dir}: no {path.name}; did training finish an epoch?")
    model.load_weights(str(path))
    return model, spec, cfg


def epochs_logged(history_csv: Path) -> int:
    if not history_csv.exists():
        return 0
    with open(history_csv) as f:
        return max(0, sum(1 for line in f if line.strip()) - 1)


def write_run(out_dir, spec: FeatureSpec, model, config: dict) -> Path:
    """Write a run folder made without training (spec.json, config.json, the model's weights
    as best and last), as export and training.train --from read it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(spec.to_json())
    model.save_weights(str(out / "best.weights.h5"))
    model.save_weights(str(out / "last.weights.h5"))
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out
