"""Signal-level pieces of dataset creation: silence trimming, noise fitting, SNR mixing."""
from __future__ import annotations

import numpy as np


def trim_silence(audio: np.ndarray, rate: int, *, threshold_db: float = 40.0,
                 frame_ms: float = 20.0) -> np.ndarray:
    """Drop leading and trailing frames quieter than the loudest frame minus threshold_db."""
    frame = max(1, int(rate * frame_ms / 1000))
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = (audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    level = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(level > level.max() - threshold_db)
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] * frame: (loud[-1] + 1) * frame]


def fit_length(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Crop a random segment of ``length`` samples, or loop the noise to reach it."""
    if len(noise) >= length:
        start = int(rng.integers(0, len(noise) - length + 1))
        return noise[start:start + length]
    reps = -(-length // len(noise)) + 1
    looped = np.tile(noise, reps)
    start = int(rng.integers(0, len(noise)))
    return looped[start:start + length]


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """SNR of the speech and noise actually mixed, in dB."""
    return 10.0 * np.log10(power(speech) / max(power(noise), 1e-20))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr: float, *, speech_dbfs: float = -25.0,
               peak: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) with the noise scaled to ``snr`` dB against the speech.

    The speech is set to ``speech_dbfs`` RMS, then both are scaled down together if the
    mixture would exceed ``peak``, which leaves the SNR unchanged.
    """
    speech = speech * (10 ** (speech_dbfs / 20) / np.sqrt(max(power(speech), 1e-20)))
    noise = noise * np.sqrt(power(speech) / max(power(noise), 1e-20) / 10 ** (snr / 10))
    noisy = speech + noise
    top = np.max(np.abs(noisy))
    if top > peak:
        speech, noisy = speech * (peak / top), noisy * (peak / top)
    return noisy, speech
