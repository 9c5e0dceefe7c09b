"""Average the weights of several epochs of one run into a new run directory.

    python -m training.train ... --keep-epochs -o runs/crnn        # keeps runs/crnn/epochs/
    python -m training.average_weights runs/crnn --epochs 16-20 -o runs/crnn_avg
    python -m export.to_tflite runs/crnn_avg --quant float32

Late epochs of a run at a fixed or slowly falling learning rate sit around a minimum
rather than in it; their mean is usually a better model than any one of them (stochastic
weight averaging, Izmailov et al. 2018) and costs nothing at run time, since the graph is
the same. Every variable is averaged, the batch-normalisation statistics included: the
epochs are close enough that their statistics differ little (measured in training/README.md,
"Averaging epochs").
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

from .run_dir import build_run_model, write_run  # noqa: E402


def parse_epochs(text: str) -> list[int]:
    """'16-20' or '3,5,7' (or a mix: '3,10-12') as a sorted list of distinct epochs (1-based)."""
    epochs: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi or lo)
            if first < 1 or last < first:
                raise ValueError
            epochs.update(range(first, last + 1))
    except ValueError:
        raise DenoiseError(f"--epochs wants epochs from 1 like 16-20 or 3,5,7, got {text!r}") from None
    return sorted(epochs)


def epoch_file(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / "epochs" / f"epoch_{epoch:03d}.weights.h5"


def average_run(run_dir, epochs: list[int], out_dir) -> Path:
    """Write OUT_DIR: RUN_DIR's spec and config, and the mean of the epochs' weights as
    best.weights.h5 and last.weights.h5."""
    run_dir, out = Path(run_dir), Path(out_dir)
    if len(epochs) < 2:
        raise DenoiseError("averaging wants at least two epochs")
    missing = [e for e in epochs if not epoch_file(run_dir, e).is_file()]
    if missing:
        kept = sorted(int(p.stem.split("_")[1].split(".")[0]) for p in (run_dir / "epochs").glob("epoch_*.weights.h5"))
        have = f"it keeps epochs {kept[0]}-{kept[-1]}" if kept else "it kept none (train with --keep-epochs)"
        raise DenoiseError(f"{run_dir}: no weights for epoch {missing[0]}; {have}")
    if (out / "config.json").exists():
        raise DenoiseError(f"{out} already holds a run; choose another --out")
    model, spec, cfg = build_run_model(run_dir)
    total = None
    for e in epochs:
        model.load_weights(str(epoch_file(run_dir, e)))
        weights = [w.astype(np.float64) for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights([(t / len(epochs)).astype(np.float32) for t in total])
    return write_run(out, spec, model, {**cfg, "averaged_from": {"run": str(run_dir), "epochs": epochs}})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.average_weights",
                                description="Average several epochs' weights of a run trained with "
                                            "--keep-epochs into a new run folder (export it as any run).")
    p.add_argument("run_dir", help="RUN_DIR trained with --keep-epochs")
    p.add_argument("--epochs", required=True, help="epochs to average, e.g. 16-20 or 3,5,7 (1-based, as Keras counts)")
    p.add_argument("-o", "--out", required=True, help="run folder to create")
    args = p.parse_args(argv)
    try:
        epochs = parse_epochs(args.epochs)
        out = average_run(args.run_dir, epochs, args.out)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"averaged epochs {epochs[0]}-{epochs[-1]} ({len(epochs)}) of {args.run_dir} -> {out}; "
          f"export with: python -m export.to_tflite {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
