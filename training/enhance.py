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


def lookahead_inputs(audio: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(noisy spectra, model input) for a whole signal: a model with lookahead hears
    ``lookahead_frames`` frames of silence after the end, as a flushed stream does, so
    the input has that many frames more than the spectra; its output for frame t is at
    t + lookahead_frames."""
    look = spec.lookahead_frames
    if not look:
        return model_inputs(audio, spec)
    spectra, inputs = model_inputs(np.concatenate([audio, np.zeros(look * spec.hop)]), spec)
    return spectra[:len(spectra) - look], inputs


def keras_mask(model, audio: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(noisy spectra, the model's output for each of them), a lookahead's output moved
    back to the frames it is for."""
    spectra, inputs = lookahead_inputs(audio, spec)
    out = np.asarray(model.predict(inputs, verbose=0, batch_size=1024), np.float64)
    return spectra, out.reshape(-1, spec.n_bins)[spec.lookahead_frames:]


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
