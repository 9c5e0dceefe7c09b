"""Whole-signal denoising built on StreamDenoiser, so offline and streaming agree by construction."""
from __future__ import annotations

import numpy as np

from .audio_io import check_signal, resample
from .stream import DEFAULT_MIN_GAIN_DB, StreamDenoiser


def denoise(audio, sample_rate: int, model=None, *, num_threads: int = 1,
            min_gain_db: float | None = DEFAULT_MIN_GAIN_DB) -> np.ndarray:
    """Denoise a mono signal; same length and alignment as the input (latency removed).

    ``model``: a .tflite path, a StreamDenoiser (its own min_gain_db applies), or None for
    the bundled default. Audio at
    another rate than the model's is resampled to it (soxr) and the result resampled
    back to ``sample_rate``.
    """
    x = check_signal(audio)
    stream = model if isinstance(model, StreamDenoiser) else StreamDenoiser(
        model, num_threads=num_threads, min_gain_db=min_gain_db)
    stream.reset()
    rate = stream.sample_rate
    y = resample(x, sample_rate, rate) if sample_rate != rate else x
    out = np.concatenate([stream.process(y), stream.flush()])
    L = stream.latency_samples
    out = out[L:L + len(y)]
    if sample_rate != rate:
        out = resample(out, rate, sample_rate)
        out = np.pad(out, (0, max(0, len(x) - len(out))))[: len(x)]
    return out
