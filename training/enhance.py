"""Offline enhancement with a Keras model through the runtime's DSP (for validation and export checks)."""
from __future__ import annotations

import numpy as np

from runtime import dsp
from runtime.spec import FeatureSpec


def model_inputs(audio: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(noisy spectra (frames, bins), model input) exactly as the runtime builds them."""
    spectra = dsp.stft(audio, spec)
    feats = dsp.features(np.abs(spectra), spec)
    if spec.model_kind == "cr-ced":
        return spectra, dsp.context_windows(feats, spec.context_frames)[..., None]
    return spectra, feats[None]


def keras_mask(model, audio: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    spectra, inputs = model_inputs(audio, spec)
    out = model.predict(inputs, verbose=0, batch_size=1024)
    return spectra, np.asarray(out, np.float64).reshape(len(spectra), spec.n_bins)


def enhance(model, audio: np.ndarray, spec: FeatureSpec, postfilter: bool = False,
            min_gain_db: float | None = None) -> np.ndarray:
    """Denoised audio, same length and alignment as the input; ``postfilter`` applies
    the runtime's post-filter to the mask (a mask output only) and ``min_gain_db``
    limits the attenuation as the runtime's option of that name does."""
    spectra, mask = keras_mask(model, audio, spec)
    if postfilter:
        mask = mask * dsp.postfilter_gains(np.abs(spectra), spec)
    min_gain = 0.0 if min_gain_db is None else 10 ** (min_gain_db / 20)
    return dsp.istft(dsp.apply_output(spectra, mask, spec, min_gain), spec, len(audio))
