"""Noise made in code, because recorded noise is scarce: babble, coloured noise, hum, transients."""
from __future__ import annotations

import numpy as np

KINDS = ("babble", "coloured", "hum", "transients")


def coloured(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f^alpha power spectrum, alpha in [0, 2] (white to brown)."""
    alpha = rng.uniform(0.0, 2.0)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    f = np.fft.rfftfreq(length, 1.0 / rate)
    f[0] = f[1] if length > 1 else 1.0
    spectrum *= f ** (-alpha / 2)
    return np.fft.irfft(spectrum, n=length)


def hum(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mains or motor hum: a 40-150 Hz fundamental with decaying random harmonics + hiss."""
    f0 = rng.choice([50.0, 60.0]) if rng.random() < 0.6 else rng.uniform(40, 150)
    t = np.arange(length) / rate
    out = np.zeros(length)
    for k in range(1, 40):
        if k * f0 >= rate / 2:
            break
        out += rng.uniform(0.1, 1.0) / k ** rng.uniform(0.5, 1.5) * np.sin(
            2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    return out + 0.01 * np.std(out) * rng.standard_normal(length)


def transients(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Knocks, clicks and clatter: decaying filtered bursts at random times."""
    out = 0.003 * rng.standard_normal(length)
    n_events = max(1, int(rng.uniform(0.5, 4.0) * length / rate))
    for _ in range(n_events):
        dur = int(rate * rng.uniform(0.005, 0.15))
        start = int(rng.integers(0, max(1, length - dur)))
        burst = rng.standard_normal(dur) * np.exp(-np.arange(dur) / (dur * rng.uniform(0.05, 0.4)))
        if rng.random() < 0.5:  # darker knock
            burst = np.convolve(burst, np.ones(8) / 8, mode="same")
        out[start:start + dur] += rng.uniform(0.2, 1.0) * burst[: len(out) - start]
    return out


def babble(length: int, speech_segments: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Several talkers at once from other speakers' speech, each at its own level."""
    from .mixing import fit_length, power

    out = np.zeros(length)
    for seg in speech_segments:
        seg = fit_length(seg, length, rng)
        out += seg / np.sqrt(max(power(seg), 1e-20)) * rng.uniform(0.5, 1.0)
    return out


def generate(kind: str, length: int, rate: int, rng: np.random.Generator,
             speech_segments: list[np.ndarray] | None = None) -> np.ndarray:
    if kind == "coloured":
        return coloured(length, rate, rng)
    if kind == "hum":
        return hum(length, rate, rng)
    if kind == "transients":
        return transients(length, rate, rng)
    if kind == "babble":
        if not speech_segments:
            return coloured(length, rate, rng)
        return babble(length, speech_segments, rng)
    raise ValueError(f"unknown generated noise kind {kind!r}")


def augment(noise: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A variation of a noise: spectral tilt of +-6 dB/octave-ish, a slow level drift of up
    to +-6 dB, and with probability 0.3 a generated coloured/hum layer 0-15 dB below it."""
    from .mixing import power

    n = len(noise)
    spectrum = np.fft.rfft(noise)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    tilt = rng.uniform(-1.0, 1.0)
    spectrum *= ((f + 100.0) / 1000.0) ** (tilt / 2)
    out = np.fft.irfft(spectrum, n=n)
    t = np.arange(n) / rate
    drift_db = rng.uniform(0, 6) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3))
    out *= 10 ** (drift_db / 20)
    if rng.random() < 0.3:
        layer = generate(["coloured", "hum"][int(rng.integers(2))], n, rate, rng)
        gain = np.sqrt(power(out) / max(power(layer), 1e-20)) * 10 ** (-rng.uniform(0, 15) / 20)
        out = out + gain * layer
    return out
