"""Experiment tracking in Weights & Biases: config, per-epoch metrics, final figures.

Offline by default (``WANDB_MODE=offline``, set here unless the caller set it): a run
directory is written under RUN_DIR/wandb and ``wandb sync`` uploads it later, so training
never needs a network or an account. Needs the [track] extra.
"""
from __future__ import annotations

import os
from pathlib import Path

from runtime.errors import DenoiseError


class Tracker:
    """One W&B run; ``callback()`` logs every epoch's Keras logs, ``finish()`` the summary."""

    def __init__(self, project: str, config: dict, run_dir, name: str | None = None,
                 group: str | None = None):
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb
        except ImportError:
            raise DenoiseError("--wandb needs the wandb package: pip install -e \".[track]\"") from None
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.wandb = wandb
        self.run = wandb.init(project=project, config=config, dir=str(run_dir),
                              name=name or Path(run_dir).name, group=group, reinit="finish_previous")

    @property
    def directory(self) -> Path:
        """The run's local folder (offline-run-... or run-...)."""
        return Path(self.run.dir).parent

    def callback(self):
        import tf_keras as keras

        run = self.run

        class _Log(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                run.log({k: float(v) for k, v in (logs or {}).items()}, step=epoch + 1)

        return _Log()

    def finish(self, summary: dict) -> None:
        for key, value in summary.items():
            self.run.summary[key] = value
        self.run.finish()
