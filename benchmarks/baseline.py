"""Classical baseline: a decision-directed Wiener filter with a minimum-tracking noise estimate.

Uses the runtime's causal STFT, so it is causal and sees exactly what the models see.
"""
from __future__ import annotations

import numpy as np

from runtime import dsp
from runtime.spec import FeatureSpec


def wiener_denoise(audio: np.ndarray, spec: FeatureSpec, *, alpha_dd: float = 0.98,
                   smooth: float = 0.8, window_s: float = 1.5, gain_floor_db: float = -15.0) -> np.ndarray:
    """Denoised audio, same length as the input.

    Noise PSD: minimum of the smoothed periodogram over the last ``window_s`` seconds
    (minimum statistics, with a fixed bias correction); a-priori SNR by the decision-
    directed rule (Ephraim & Malah 1984); gain xi / (1 + xi), floored.
    """
    spectra = dsp.stft(audio, spec)
    power = np.abs(spectra) ** 2
    n_frames = len(power)
    span = max(1, int(window_s * spec.sample_rate / spec.hop))
    floor = 10 ** (gain_floor_db / 20)
    smoothed = power[0].copy()
    history = np.full((span, spec.n_bins), np.inf)
    prev_clean = np.zeros(spec.n_bins)
    gains = np.empty_like(power)
    for t in range(n_frames):
        smoothed = smooth * smoothed + (1 - smooth) * power[t]
        history[t % span] = smoothed
        noise = np.maximum(history.min(axis=0) * 1.5, 1e-12)  # bias of the minimum
        post = power[t] / noise
        prior = alpha_dd * prev_clean / noise + (1 - alpha_dd) * np.maximum(post - 1, 0)
        gain = np.maximum(prior / (1 + prior), floor)
        gains[t] = gain
        prev_clean = (gain ** 2) * power[t]
    return dsp.istft(spectra * gains, spec, len(audio))
