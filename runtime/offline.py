"""Whole-signal denoising built on StreamDenoiser, so offline and streaming agree by construction."""
from __future__ import annotations

import numpy as np

from .audio_io import check_signal, resample
from .dsp import band_gain
from .errors import AudioError
from .stream import FROM_MODEL, StreamDenoiser, default_model_path

HIGH_BAND_MODES = ("gain", "drop")
#: The top quarter of the model's band (3-4 kHz for an 8 kHz model, 6-8 kHz for a 16 kHz
#: one), whose gain is carried over to the band above it.
HIGH_BAND_REFERENCE = 0.75


def high_band_reference_hz(spec) -> float:
    return HIGH_BAND_REFERENCE * spec.sample_rate / 2


def stream_for(model, sample_rate: int, **options) -> StreamDenoiser:
    """``model`` if it is a StreamDenoiser, else one on that path or, for None, on the bundled
    model for ``sample_rate`` (the 16 kHz model for 16 kHz and above, else the 8 kHz one)."""
    if isinstance(model, StreamDenoiser):
        return model
    return StreamDenoiser(default_model_path(sample_rate) if model is None else model, **options)


def denoise(audio, sample_rate: int, model=None, *, num_threads: int = 1,
            min_gain_db: float | str | None = FROM_MODEL, high_band: str = "gain",
            postfilter: str | None = FROM_MODEL) -> np.ndarray:
    """Denoise a mono signal; same length and alignment as the input (latency removed).

    ``model``: a .tflite path, a StreamDenoiser (its own min_gain_db and postfilter apply),
    or None for the bundled model for the rate: the 16 kHz model for input at 16 kHz and
    above, the 8 kHz model below. Audio at another rate than the model's is resampled to
    it (soxr) and the result resampled back to ``sample_rate``.

    Above the model's Nyquist (4 kHz for the 8 kHz models, 8 kHz for the 16 kHz ones) the
    model hears nothing. With ``high_band="gain"`` (default) that band of the input is
    kept, scaled frame by frame by the gain the model applied in the top quarter of its
    band, so a 16 or 48 kHz recording does not come back band-limited (with an 8 kHz model
    on VoiceBank-DEMAND at 16 kHz: wide-band PESQ 1.66 against 1.59 band-limited and 1.44
    noisy); ``"drop"`` returns the band-limited output.
    """
    if high_band not in HIGH_BAND_MODES:
        raise AudioError(f"high_band must be one of {HIGH_BAND_MODES}, got {high_band!r}")
    x = check_signal(audio)
    stream = stream_for(model, sample_rate, num_threads=num_threads, min_gain_db=min_gain_db,
                        postfilter=postfilter)
    stream.reset()
    rate = stream.sample_rate
    y = resample(x, sample_rate, rate) if sample_rate != rate else x
    out = np.concatenate([stream.process(y), stream.flush()])
    L = stream.latency_samples
    out = out[L:L + len(y)]
    if sample_rate == rate:
        return out
    back = _resample_to_length(out, rate, sample_rate, len(x))
    if sample_rate < rate or high_band == "drop":
        return back
    high = x - _resample_to_length(y, rate, sample_rate, len(x))  # what the model never heard
    gain = band_gain(y, out, stream.spec, high_band_reference_hz(stream.spec))
    gain = np.interp(np.arange(len(x)) * (rate / sample_rate), np.arange(len(gain)), gain)
    return back + gain * high


def _resample_to_length(audio: np.ndarray, rate_in: int, rate_out: int, length: int) -> np.ndarray:
    out = resample(audio, rate_in, rate_out)
    return np.pad(out, (0, max(0, length - len(out))))[:length]
