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
               peak: float = 0.95, target: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) with the noise scaled to ``snr`` dB against the speech.

    The speech is set to ``speech_dbfs`` RMS, then both are scaled down together if the
    mixture would exceed ``peak``, which leaves the SNR unchanged. ``target`` (e.g. the
    early part of reverberant ``speech``) is returned as the clean signal instead of the
    speech itself, scaled by the same factors.
    """
    scale = 10 ** (speech_dbfs / 20) / np.sqrt(max(power(speech), 1e-20))
    speech = speech * scale
    noise = noise * np.sqrt(power(speech) / max(power(noise), 1e-20) / 10 ** (snr / 10))
    noisy = speech + noise
    clean = speech if target is None else target * scale
    top = np.max(np.abs(noisy))
    if top > peak:
        clean, noisy = clean * (peak / top), noisy * (peak / top)
    return noisy, clean


def mic_colouring(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The same signal through a random cheap microphone and room: a high-pass at 40-300 Hz,
    a spectral tilt of up to +-3 dB per octave and one broad peak or dip of up to +-8 dB.

    Applied to the speech before mixing, so the clean target carries it too: the model
    learns to keep speech whatever its colour instead of the one colour of its corpus.
    """
    n = len(audio)
    if n < 2:
        return audio
    f = np.fft.rfftfreq(n, 1.0 / rate)
    cutoff = rng.uniform(40.0, 300.0)
    highpass = (f / cutoff) ** 2 / (1.0 + (f / cutoff) ** 2)  # second order, magnitude squared
    tilt_db_per_octave = rng.uniform(-3.0, 3.0)
    tilt_db = tilt_db_per_octave * np.log2(np.maximum(f, 50.0) / 1000.0)
    centre, width, peak_db = rng.uniform(300.0, 0.4 * rate), rng.uniform(0.5, 1.5), rng.uniform(-8.0, 8.0)
    bell_db = peak_db * np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre) / width) ** 2)
    gain = np.sqrt(highpass) * 10 ** ((tilt_db + bell_db) / 20)
    return np.fft.irfft(np.fft.rfft(audio) * gain, n=n)
