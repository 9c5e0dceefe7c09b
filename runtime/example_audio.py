"""Make a noisy example file for the quickstart (synthetic, so nothing is downloaded).

    python -m runtime.example_audio noisy.wav

The "speech" is a voiced signal with a gliding pitch, moving formants, syllable rhythm and
pauses; the noise is a mix of coloured noise and hum at 5 dB SNR. It exercises the whole
pipeline; for real quality numbers see benchmarks.quality on real recordings.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def speech_like(rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Voiced syllables: gliding pitch, formant-shaped harmonics, 3-5 Hz rhythm, pauses."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = rng.uniform(90, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    drift = np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)
    formants = [rng.uniform(400, 800) + 150 * drift, rng.uniform(1100, 2200) - 300 * drift]
    out = np.zeros(n)
    for k in range(1, 40):
        fk = k * f0
        amp = sum(np.exp(-((fk - f) / 200.0) ** 2) for f in formants) + 0.05
        out += np.where(fk < rate / 2 - 100, amp / k ** 0.5, 0) * np.sin(k * phase)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 0.7
    pauses = (np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6)) > -0.6).astype(float)
    return 0.1 * out * syllables * pauses / np.max(np.abs(out))


def noisy_example(rate: int = 8000, seconds: float = 6.0, snr_db: float = 5.0, seed: int = 0):
    """(noisy, clean) float64 arrays."""
    rng = np.random.default_rng(seed)
    clean = speech_like(rate, seconds, rng)
    n = len(clean)
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.arange(n // 2 + 1) + 1), n=n)
    hum = np.sin(2 * np.pi * 50 * np.arange(n) / rate) + 0.5 * np.sin(2 * np.pi * 150 * np.arange(n) / rate)
    noise = pink / np.std(pink) + 0.3 * hum
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return clean + noise, clean


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.example_audio",
                                description="Write a synthetic noisy speech-like example file.")
    p.add_argument("output", help="file to write, e.g. noisy.wav")
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--snr", type=float, default=5.0, help="SNR in dB (default 5)")
    p.add_argument("--clean", default=None, help="also write the clean reference here")
    args = p.parse_args(argv)
    from .audio_io import write_audio

    noisy, clean = noisy_example(args.sample_rate, args.seconds, args.snr)
    write_audio(args.output, noisy, args.sample_rate)
    if args.clean:
        write_audio(args.clean, clean, args.sample_rate)
    print(f"wrote {args.output} ({args.seconds:g} s, {args.sample_rate} Hz, {args.snr:g} dB SNR)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
