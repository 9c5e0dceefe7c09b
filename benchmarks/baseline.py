"""Classical baseline: a decision-directed Wiener filter with a minimum-tracking noise estimate.

Uses the runtime's causal STFT, so it is causal and sees exactly what the models see.
"""
from __future__ import annotations

import numpy as np

from runtime import dsp
from runtime.spec import FeatureSpec


def wiener_denoise(audio: np.ndarray, spec: FeatureSpec, *, alpha_dd: float = 0.98,
                   smooth: float = 0.8, window_s: float = 1.5, gain_floor_db: float = -15.0) -> np.ndarray:
    """Denoised audio, same length as the input: runtime.dsp.WienerGain with the exact
    window minimum, applied alone (gain xi / (1 + xi), floored at ``gain_floor_db``).

    Unlike the runtime's post-filter it keeps the stream's first frames (partly leading
    zeros) in its statistics, as it always has, so the baseline rows published in the
    model card and benchmarks/README.md stay comparable across dates."""
    spectra = dsp.stft(audio, spec)
    wiener = dsp.WienerGain(spec, alpha_dd=alpha_dd, smooth=smooth, window_s=window_s,
                            floor_db=gain_floor_db)
    gains = np.stack([wiener.update(np.abs(frame)).copy() for frame in spectra])
    return dsp.istft(spectra * gains, spec, len(audio))


def oracle_mask(noisy: np.ndarray, clean: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The noisy audio through the ideal bounded mask, min(|S| / |Y|, 1) on the noisy
    phase, in the runtime's STFT: the best any model of this toolkit's design (a mask in
    [0, 1] on the noisy magnitude) can do on a pair, so a model's distance from it says how
    much is left to learn and how much only another design (a complex mask) could add."""
    noisy_spec, clean_spec = dsp.stft(noisy, spec), dsp.stft(clean, spec)
    mask = np.minimum(np.abs(clean_spec) / np.maximum(np.abs(noisy_spec), 1e-12), 1.0)
    return dsp.istft(noisy_spec * mask, spec, len(noisy))
