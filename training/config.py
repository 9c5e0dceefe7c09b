"""TrainConfig: every setting of a training run, built once from argv, a JSON file or Python.

The command line, ``--config FILE`` (e.g. a tuning study's best.json) and callers such as
``training.tune`` all end in this one object, which ``training.train.train`` takes. What a
fine-tune or QAT run inherits from its ``--from`` run is decided here too (``inherited``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from runtime.errors import DenoiseError

KINDS = ("cr-ced", "crnn")
#: loss settings a --from run passes on unless given again, with their defaults
INHERITED_LOSS = {"distortion_weight": 0.0, "residual_weight": 0.0, "postfilter_loss": "none",
                  "sisdr_weight": 0.0}


@dataclass
class TrainConfig:
    data: str
    out: str
    model: str | None = None  # default cr-ced; with from_run, the run's own
    preset: str | None = None  # paper8k; with from_run, the run's own (another one band-extends)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    lr_decay: float = 0.5
    lr_decay_epochs: int = 10
    patience: int = 5
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    seq_frames: int = 250
    target: str = "mask"
    distortion_weight: float | None = None  # None: the from_run's, else 0
    residual_weight: float | None = None
    postfilter_loss: str | None = None
    sisdr_weight: float | None = None
    units: int | None = None
    units2: int | None = None  # a second, stacked LSTM
    proj: int | None = None
    input_skip: bool = False
    lookahead: int | None = None  # CRNN frames after the masked one
    pool_above: float | None = None
    new_front_end: bool = False
    channels: str | None = None  # "16,16"
    cache: str | None = None
    resume: bool = False
    distribute: str = "none"
    qat: bool = False
    from_run: str | None = None
    pesq_every: int = 1
    monitor: str = "val_loss"
    pesq_files: int = 4
    jit: str = "auto"
    seed: int = 0
    verbose: int = 1
    keep_epochs: bool = False  # every epoch's weights in RUN_DIR/epochs/ (for training.average_weights)
    wandb: str | None = None  # Weights & Biases project (offline unless WANDB_MODE says otherwise)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise DenoiseError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def settings_file(cls, path) -> dict:
        """Settings from a JSON file: a plain object of TrainConfig fields, or a tuning
        study's best.json ({"config": {...}, ...}). data and out stay the caller's."""
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise DenoiseError(f"{path}: cannot read a JSON config ({exc})") from None
        values = values.get("config", values)
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise DenoiseError(f"{path}: unknown training settings: {', '.join(unknown)}")
        return {k: v for k, v in values.items() if k not in ("data", "out")}

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        """The checks that need no files; DenoiseError says what is wrong."""
        if self.model is not None and self.model not in KINDS:
            raise DenoiseError(f"model must be one of {KINDS}, got {self.model!r}")
        if self.qat and not self.from_run:
            raise DenoiseError("--qat needs --from RUN_DIR (a finished float run)")
        if self.monitor not in ("val_loss", "val_pesq"):
            raise DenoiseError(f"monitor must be val_loss or val_pesq, got {self.monitor!r}")
        if self.monitor == "val_pesq" and self.pesq_every != 1:
            raise DenoiseError("--monitor val_pesq needs --pesq-every 1")
        for name in ("distortion_weight", "residual_weight"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 10:
                raise DenoiseError(f"--{name.replace('_', '-')} must be in [0, 10]")
        if self.sisdr_weight is not None and not 0 <= self.sisdr_weight <= 1:
            raise DenoiseError("--sisdr-weight must be in [0, 1] (it weighs decibels)")
        if self.epochs < 1 or self.batch_size < 1 or self.lr < 0:
            raise DenoiseError("epochs and batch size must be positive, the learning rate not negative")

    def inherited(self, base: dict | None) -> dict:
        """The loss settings in force: what was given, else the --from run's (a fine-tune or
        QAT keeps the loss its run was trained with), else the defaults."""
        return {name: getattr(self, name) if getattr(self, name) is not None
                else (base or {}).get(name, default)
                for name, default in INHERITED_LOSS.items()}
