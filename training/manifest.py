"""manifest.csv, the index of a paired dataset: the one place that reads and writes it.

One row per pair: id, split (train/dev), noisy and clean paths relative to the folder,
the measured SNR, the speech and noise sources, and (when a recording effect was on) the
effects applied. training.make_dataset writes it; training, export calibration and
benchmarks.quality read it. Standard library only, so the TensorFlow-free benchmarks can
import it.
"""
from __future__ import annotations

import csv
from pathlib import Path

from runtime.errors import DenoiseError

NAME = "manifest.csv"
FIELDS = ["id", "split", "noisy", "clean", "snr_db", "speech_source", "noise_source"]
#: written only when a recording effect is on, so older sets keep their manifest bytes
EFFECTS_FIELD = "effects"


def read_rows(path) -> tuple[list[dict], list[str]]:
    """The rows of one manifest file as written (relative paths), and its field names."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader), list(reader.fieldnames or [])


def write_rows(path, rows: list[dict], fields: list[str]) -> None:
    """Write rows (missing fields empty) under a header of ``fields``."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})


def has_manifest(data_dir) -> bool:
    return (Path(data_dir) / NAME).is_file()


def read(data_dir, split: str | None = None) -> list[dict]:
    """Rows of DIR/manifest.csv (optionally one split; rows without a split are train) with
    absolute noisy/clean paths."""
    data_dir = Path(data_dir)
    if not has_manifest(data_dir):
        raise DenoiseError(f"{data_dir}: no {NAME} (make one with python -m training.make_dataset)")
    rows, _ = read_rows(data_dir / NAME)
    for row in rows:
        row["noisy"] = str(data_dir / row["noisy"])
        row["clean"] = str(data_dir / row["clean"])
    if split is not None:
        rows = [r for r in rows if r.get("split", "train") == split]
    return rows


class Appender:
    """A manifest written a row at a time and flushed after each, so an interrupted build
    keeps every pair it finished (training.make_dataset resumes from it)."""

    def __init__(self, path, fields: list[str]):
        self._fields = fields
        self._file = open(path, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=fields)
        self._writer.writeheader()

    def write(self, row: dict) -> None:
        self._writer.writerow({k: row.get(k, "") for k in self._fields})
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
