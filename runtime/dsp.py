"""The one DSP core: causal STFT framing, features, context stacking and overlap-add.

Everything that turns audio into model input, or model output into audio, lives here:
training features, the exported model's calibration data, `StreamDenoiser`, and the
golden vectors for the Android port all call these functions.

Conventions (all lengths in samples, spectra are (frames, bins)):

* The signal is preceded by ``L = n_fft - hop`` zeros. Frame ``i`` covers padded
  samples ``[i*hop, i*hop + n_fft)``: it ends with input sample ``(i+1)*hop - 1``,
  so it uses no look-ahead.
* After frame ``i`` is synthesised, padded output samples ``[i*hop, (i+1)*hop)`` are
  final. The output therefore lags the input by ``L`` samples (24 ms for paper8k); a
  model with ``lookahead_frames`` adds that many hops (FrameProcessor's delay line).
* Synthesis uses the analysis window again and divides by the steady-state sum of
  squared windows, so analysis followed by synthesis is the identity after ``L``.
"""
from __future__ import annotations

import numpy as np

import importlib.util
import os

from .errors import DenoiseError, SpecError
from .spec import FeatureSpec


def analysis_window(spec: FeatureSpec) -> np.ndarray:
    """Periodic (DFT-even) window of length n_fft, float64."""
    n = np.arange(spec.win_length)
    phase = 2.0 * np.pi * n / spec.win_length
    if spec.window == "hamming":
        return 0.54 - 0.46 * np.cos(phase)
    if spec.window == "hann":
        return 0.5 - 0.5 * np.cos(phase)
    raise SpecError(f"unknown window {spec.window!r}")


def synthesis_gain(spec: FeatureSpec) -> np.ndarray:
    """1 / sum_k w(j + k*hop)^2 for j in [0, hop): the overlap-add normalisation."""
    w2 = analysis_window(spec) ** 2
    wsum = w2.reshape(-1, spec.hop).sum(axis=0)
    if np.any(wsum < 1e-8):
        raise SpecError("window and hop do not overlap-add to a non-zero sum")
    return 1.0 / wsum


def frame_count(num_samples: int, spec: FeatureSpec) -> int:
    """Frames needed so every input sample reaches the (delayed) output."""
    return -(-(num_samples + spec.analysis_delay_samples) // spec.hop)


# ---------------------------------------------------------------- offline (vectorised)

def stft(audio: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Causal STFT of a whole signal: complex128 (frames, bins), frames = frame_count()."""
    x = np.asarray(audio, dtype=np.float64)
    n_frames = frame_count(len(x), spec)
    padded = np.zeros((n_frames - 1) * spec.hop + spec.n_fft)
    padded[spec.analysis_delay_samples:spec.analysis_delay_samples + len(x)] = x
    idx = np.arange(spec.n_fft)[None, :] + spec.hop * np.arange(n_frames)[:, None]
    return np.fft.rfft(padded[idx] * analysis_window(spec), axis=1)


def istft(spectra: np.ndarray, spec: FeatureSpec, num_samples: int | None = None) -> np.ndarray:
    """Overlap-add synthesis, returned latency-compensated (aligned with the input).

    ``num_samples`` is the original input length; by default frames*hop - latency.
    """
    n_frames = spectra.shape[0]
    frames = np.fft.irfft(spectra, n=spec.n_fft, axis=1) * analysis_window(spec)
    out = np.zeros((n_frames - 1) * spec.hop + spec.n_fft)
    for k in range(spec.n_fft // spec.hop):
        block = frames[:, k * spec.hop:(k + 1) * spec.hop].reshape(-1)
        out[k * spec.hop:k * spec.hop + block.size] += block
    out[: n_frames * spec.hop] *= np.tile(synthesis_gain(spec), n_frames)
    start = spec.analysis_delay_samples
    if num_samples is None:
        num_samples = n_frames * spec.hop - start
    return out[start:start + num_samples]


def band_gain(reference: np.ndarray, processed: np.ndarray, spec: FeatureSpec,
              low_hz: float) -> np.ndarray:
    """The gain that processing applied to the band from ``low_hz`` to Nyquist, per sample.

    Per frame, the square root of the band energy of ``processed`` over that of
    ``reference`` (same length and alignment), clipped to [0, 1] and interpolated between
    frame centres: (len(reference),). Frames whose reference band is silent get gain 1.
    """
    lo = band_start_bin(spec, low_hz)
    gain = band_frame_gains(stft(reference, spec), stft(processed, spec), lo)
    return np.interp(np.arange(len(reference)), frame_centres(np.arange(len(gain)), spec), gain)


def band_start_bin(spec: FeatureSpec, low_hz: float) -> int:
    lo = int(np.ceil(low_hz * spec.n_fft / spec.sample_rate))
    if not 0 < lo < spec.n_bins:
        raise SpecError(f"band from {low_hz} Hz is outside 0..{spec.sample_rate / 2} Hz")
    return lo


def band_frame_gains(reference_spectra: np.ndarray, processed_spectra: np.ndarray, lo: int) -> np.ndarray:
    """Per frame, sqrt(processed / reference energy) in bins lo.., clipped to [0, 1]; 1 where
    the reference band is silent (band_gain's frame values; runtime.file_stream's too)."""
    e_ref = np.sum(np.abs(reference_spectra[:, lo:]) ** 2, axis=1)
    e_out = np.sum(np.abs(processed_spectra[:, lo:]) ** 2, axis=1)
    silent = e_ref <= 1e-20
    gain = np.where(silent, 1.0, np.sqrt(e_out / np.where(silent, 1.0, e_ref)))
    return np.clip(gain, 0.0, 1.0)


def frame_centres(frames, spec: FeatureSpec):
    """Sample position of the centre of causal frame i (frame i ends at (i+1)*hop - 1)."""
    return frames * spec.hop - spec.analysis_delay_samples + spec.n_fft / 2


def log_magnitude(magnitude: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Un-normalised feature log(|X| + eps); what normalisation statistics are measured on."""
    return np.log(np.asarray(magnitude, dtype=np.float64) + spec.log_eps)


def normalisation(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(mean, 1/std) per bin from the spec, float64 (bins,)."""
    mean = np.asarray(spec.feature_mean or np.zeros(spec.n_bins), dtype=np.float64)
    std = np.asarray(spec.feature_std or np.ones(spec.n_bins), dtype=np.float64)
    return mean, 1.0 / np.maximum(std, 1e-6)


def features(magnitude: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Normalised log-magnitude features, float32 (frames, bins). Frame-local: causal."""
    mean, inv_std = normalisation(spec)
    return ((log_magnitude(magnitude, spec) - mean) * inv_std).astype(np.float32)


def context_windows(feats: np.ndarray, context: int) -> np.ndarray:
    """Stack each frame with its context-1 predecessors (zeros before the start).

    Returns (frames, bins, context) with time ascending: [..., -1] is the current frame.
    """
    n, bins = feats.shape
    padded = np.concatenate([np.zeros((context - 1, bins), feats.dtype), feats])
    idx = np.arange(n)[:, None] + np.arange(context)[None, :]
    return np.ascontiguousarray(padded[idx].transpose(0, 2, 1))


def apply_output(spectra: np.ndarray, model_out: np.ndarray, spec: FeatureSpec,
                 min_gain: float = 0.0) -> np.ndarray:
    """Enhanced spectra from the model output and the noisy spectra (noisy phase)."""
    gain = np.asarray(model_out, np.float64)
    if spec.output_kind == "magnitude":
        gain = gain / np.maximum(np.abs(spectra), 1e-12)
    return spectra * (np.maximum(gain, min_gain) if min_gain > 0 else gain)


# ---------------------------------------------------------------- streaming (per frame)

#: TINY_DENOISE_COMPILED=0 keeps new frame processors and post-filters on numpy alone.
COMPILED_SWITCH = "TINY_DENOISE_COMPILED"


def kernels_available() -> bool:
    """numba is installed (the [fast] extra), so runtime.dsp_kernels can be compiled."""
    return importlib.util.find_spec("numba") is not None


def compiled_kernels(requested: bool | None = None):
    """runtime.dsp_kernels when the frame path is to be compiled, else None: ``requested``
    when given (True without numba is refused), by default whenever numba is installed and
    TINY_DENOISE_COMPILED is not 0. Imported here, on first use, so that ``import runtime``
    never pays numba's import."""
    if requested is None:
        switched_off = os.environ.get(COMPILED_SWITCH, "1").strip().lower() in ("0", "false", "no", "off")
        requested = kernels_available() and not switched_off
    elif requested and not kernels_available():
        raise DenoiseError('the compiled frame path needs numba: pip install -e ".[fast]"')
    if not requested:
        return None
    from . import dsp_kernels

    return dsp_kernels


def _fast_rfft():
    """numpy's pocketfft ufunc for even lengths: the same numbers as np.fft.rfft without
    its Python wrapper (5 us instead of 10 us per 256-point frame here). Falls back to the
    public API if a numpy release moves it."""
    try:
        from numpy.fft import _pocketfft_umath as pocketfft

        ufunc = pocketfft.rfft_n_even
        probe = np.arange(8.0)
        if np.allclose(ufunc(probe, 1.0), np.fft.rfft(probe)):
            return lambda x, out: ufunc(x, 1.0, out=out)
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    return lambda x, out: np.fft.rfft(x, out=out)


def _fast_irfft(n: int):
    """numpy's pocketfft inverse ufunc for n points (the numbers of np.fft.irfft, without
    its wrapper: 6-8 us at 256-512 points here, where a float32 DFT matrix product costs 7
    and 19 us). Falls back to the public API if a numpy release moves it."""
    try:
        from numpy.fft import _pocketfft_umath as pocketfft

        ufunc = pocketfft.irfft
        probe = np.fft.rfft(np.arange(float(n)))
        got = np.zeros(n)
        ufunc(probe, 1.0 / n, out=got)
        if np.allclose(got, np.arange(float(n))):
            return lambda spectrum, out: ufunc(spectrum, 1.0 / n, out=out)
    except (ImportError, AttributeError, TypeError, ValueError):
        pass

    def public(spectrum, out):
        out[:] = np.fft.irfft(spectrum, n)
    return public


class WienerGain:
    """Per-frame gain of a classical noise suppressor: decision-directed Wiener filter
    (Ephraim & Malah 1984) over a minimum-statistics noise estimate (the minimum of the
    smoothed periodogram over the last ``window_s`` seconds, times a bias factor).

    It is the classical baseline of benchmarks/ and, with ``exponent=0.5`` as a factor on
    the model's mask (``postfilter_wiener``), the runtime's post-filter: it estimates slowly
    varying noise from long minimum statistics, which the small models under-remove
    (runtime/models/MODEL_CARD.md). ``exponent`` raises the returned gain to that power;
    the recursion itself always uses the Wiener gain.

    ``sub_windows=None`` keeps every frame of the window (the exact minimum);
    ``sub_windows=U`` keeps U running minima of window/U frames each, which costs a U-row
    minimum per frame instead of a whole-window one (the window then spans between
    (U-1)/U and 1 of ``window_s``). ``warmup_frames`` first frames pass with gain 1 and
    stay out of the statistics: a stream's first frames are partly the zeros before its
    first sample, and their tiny power would pass for the noise floor for a whole window.
    Call ``update(magnitude)`` once per frame, in order. ``compiled`` (default: when numba
    is installed, runtime.dsp_kernels) runs each update as one compiled call.
    """

    def __init__(self, spec: FeatureSpec, *, alpha_dd: float = 0.98, smooth: float = 0.8,
                 window_s: float = 1.5, bias: float = 1.5, floor_db: float = -15.0,
                 sub_windows: int | None = None, warmup_frames: int = 0, exponent: float = 1.0,
                 compiled: bool | None = None):
        span = max(1, int(window_s * spec.sample_rate / spec.hop))
        slots = span if sub_windows is None else max(1, min(int(sub_windows), span))
        self._frames_per_slot = -(-span // slots)
        self._warmup_frames = int(warmup_frames)
        self.alpha_dd, self.smooth, self.bias = float(alpha_dd), float(smooth), float(bias)
        self.floor = 10 ** (floor_db / 20)
        self.exponent = float(exponent)
        bins = spec.n_bins
        # what the recursion carries and its settings, carved from one float64 array (one
        # argument for the fused synthesis kernel): the rows smoothed, others, prev_clean,
        # gain, factor; the five parameters; the slots' minima
        self._packed = np.zeros(5 * bins + 5 + slots * bins)
        self._state = self._packed[:5 * bins].reshape(5, bins)
        self._params = self._packed[5 * bins:5 * bins + 5]
        self._slots = self._packed[5 * bins + 5:].reshape(slots, bins)
        self._slots.fill(np.inf)
        self._power = np.zeros(bins)
        self._noise = np.zeros(bins)
        self._prior = np.zeros(bins)
        self._post = np.zeros(bins)
        self._smoothed, self._others, self._prev_clean, self.gain, self._factor = self._state
        self._kernels = compiled_kernels(compiled)
        self.compiled = self._kernels is not None
        # frames seen, warm-up frames left, frames per slot: an array the kernels update
        self._counters = np.array([0, 0, self._frames_per_slot], np.int64)
        self._params[:] = [self.smooth, self.bias, self.alpha_dd, self.floor, self.exponent]
        self.reset()

    @property
    def _t(self) -> int:
        return int(self._counters[0])

    @_t.setter
    def _t(self, value: int) -> None:
        self._counters[0] = value

    @property
    def _warmup(self) -> int:
        return int(self._counters[1])

    @_warmup.setter
    def _warmup(self, value: int) -> None:
        self._counters[1] = value

    @property
    def settings(self) -> tuple:
        """What fixes this filter's output for a given input (a cache key for its gains)."""
        return (self.alpha_dd, self.smooth, self.bias, self.floor, self._frames_per_slot,
                len(self._slots), self._warmup_frames, self.exponent)

    def reset(self) -> None:
        self._slots.fill(np.inf)
        self._prev_clean.fill(0.0)
        self._t = 0
        self._warmup = self._warmup_frames

    def update(self, magnitude: np.ndarray) -> np.ndarray:
        """The gain (bins,) for this frame's noisy magnitude, to the power ``exponent``; a
        buffer reused next frame."""
        if self.compiled:
            self._kernels.wiener_frame(magnitude, self._slots, self._state, self._counters, self._params)
            return self._factor
        p, sm = self._power, self._smoothed
        np.multiply(magnitude, magnitude, out=p)
        if self._warmup:
            self._warmup -= 1
            self.gain.fill(1.0)
            return self.gain
        if self._t == 0:
            sm[:] = p
        else:
            sm *= self.smooth / (1 - self.smooth)  # sm = smooth * sm + (1 - smooth) * p,
            sm += p                                  # without a temporary
            sm *= 1 - self.smooth
        k, first = divmod(self._t, self._frames_per_slot)
        slot = self._slots[k % len(self._slots)]
        if first == 0:
            # the other slots stay as they are while this one fills: their minimum is
            # taken once per slot, not per frame (the 8-row minimum is the costliest call)
            slot.fill(np.inf)
            np.min(self._slots, axis=0, out=self._others)
            slot[:] = sm
        else:
            np.minimum(slot, sm, out=slot)
        self._t += 1
        noise = np.minimum(self._others, slot, out=self._noise)
        noise *= self.bias
        np.maximum(noise, 1e-12, out=noise)
        # a-priori SNR: alpha * last clean estimate / noise + (1 - alpha) * max(post - 1, 0)
        np.divide(p, noise, out=self._post)
        self._post -= 1.0
        np.maximum(self._post, 0.0, out=self._post)
        self._post *= 1 - self.alpha_dd
        np.divide(self._prev_clean, noise, out=self._prior)
        self._prior *= self.alpha_dd
        self._prior += self._post
        g = self.gain
        np.add(self._prior, 1.0, out=g)
        np.divide(self._prior, g, out=g)
        np.maximum(g, self.floor, out=g)
        np.multiply(g, g, out=self._prev_clean)
        self._prev_clean *= p
        if self.exponent == 1.0:
            return g
        if self.exponent == 0.5:
            return np.sqrt(g, out=self._factor)
        if self.exponent == 0.25:  # two square roots: exact, and far cheaper than exp and log
            return np.sqrt(np.sqrt(g, out=self._factor), out=self._factor)
        return np.power(g, self.exponent, out=self._factor)


    def update_block(self, magnitudes: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``update`` for consecutive frames (K, bins) at once, into ``out`` (K, bins): the
        same gains (to rounding) with the linear parts vectorised over the frames. Only the
        decision-directed recursion, which depends on the previous frame's gain, is a loop,
        of seven small calls a frame instead of about twenty. Compiled, it is the frame
        update looped over the rows: the same numbers as frame by frame, exactly."""
        if self.compiled:
            self._kernels.wiener_rows(magnitudes, self._slots, self._state, out, self._counters, self._params)
            return out
        k_all = len(magnitudes)
        skip = min(self._warmup, k_all)
        if skip:
            self._warmup -= skip
            out[:skip] = 1.0
        whole = out
        mags, out = magnitudes[skip:], out[skip:]
        k = len(mags)
        if k == 0:
            return whole
        p = np.multiply(mags, mags, out=self._block_buffer(k, "power"))
        sm, scratch = self._block_buffer(k, "smoothed"), self._block_buffer(k, "scratch")
        # sm[i] = a sm[i-1] + (1 - a) p[i] as a log-depth scan: after the step of lag d each
        # row holds the sum over its last 2d inputs. Elementwise only (a matrix product
        # would call a threaded BLAS, slow for small blocks on a busy machine).
        a = self.smooth
        np.multiply(p, 1 - a, out=sm)
        previous = p[0] if self._t == 0 else self._smoothed  # the first frame starts from itself
        sm[0] += a * previous
        lag = 1
        while lag < k:
            np.multiply(sm[:k - lag], a ** lag, out=scratch[:k - lag])
            sm[lag:] += scratch[:k - lag]
            lag *= 2
        self._smoothed[:] = sm[-1]
        noise = self._block_buffer(k, "noise")
        start = 0
        while start < k:
            slot_no, first = divmod(self._t, self._frames_per_slot)
            slot = self._slots[slot_no % len(self._slots)]
            stop = min(k, start + self._frames_per_slot - first)
            if first == 0:
                slot.fill(np.inf)
                np.min(self._slots, axis=0, out=self._others)
            run = noise[start:stop]
            np.minimum.accumulate(sm[start:stop], axis=0, out=run)
            np.minimum(run, slot, out=run)
            slot[:] = run[-1]
            np.minimum(run, self._others, out=run)
            self._t += stop - start
            start = stop
        noise *= self.bias
        np.maximum(noise, 1e-12, out=noise)
        post = self._block_buffer(k, "post")
        np.divide(p, noise, out=post)
        post -= 1.0
        np.maximum(post, 0.0, out=post)
        post *= 1 - self.alpha_dd
        np.divide(self.alpha_dd, noise, out=noise)  # noise now holds alpha / noise
        prior, prev, floor = self._prior, self._prev_clean, self.floor
        for i in range(k):
            g = out[i]
            np.multiply(prev, noise[i], out=prior)
            prior += post[i]
            np.add(prior, 1.0, out=g)
            np.divide(prior, g, out=g)
            np.maximum(g, floor, out=g)
            np.multiply(g, g, out=prev)
            prev *= p[i]
        self.gain[:] = out[-1]
        if self.exponent == 0.5:
            np.sqrt(out, out=out)
        elif self.exponent == 0.25:
            np.sqrt(np.sqrt(out, out=out), out=out)
        elif self.exponent != 1.0:
            np.power(out, self.exponent, out=out)
        return whole

    def _block_buffer(self, k: int, name: str) -> np.ndarray:
        """A (k, bins) view of a per-name scratch buffer that only grows (no allocation per
        block once the largest block size has been seen)."""
        buffers = self.__dict__.setdefault("_blocks", {})
        buf = buffers.get(name)
        if buf is None or len(buf) < k:
            buf = buffers[name] = np.zeros((max(k, 64), len(self._power)))
        return buf[:k]


def postfilter_wiener(spec: FeatureSpec, compiled: bool | None = None) -> WienerGain:
    """The runtime post-filter with the spec's settings (runtime.spec.RUN_TIME_DEFAULTS
    unless the model says otherwise): a power of a Wiener gain (the square root, a -20 dB
    floor, eight sub-window minima over 1.5 s by default; the frames that hold the stream's
    leading zeros, n_fft/hop - 1, left out) that multiplies the model's mask. The square
    root was picked on mix8k_v4's dev split against capping the mask with the whole gain
    (MODEL_CARD.md): it removes the same steady floor where the model leaves it, and takes
    less speech where the model keeps it."""
    return WienerGain(spec, floor_db=spec.setting("postfilter_floor_db"),
                      window_s=spec.setting("postfilter_window_s"),
                      sub_windows=spec.setting("postfilter_sub_windows"),
                      warmup_frames=spec.n_fft // spec.hop - 1,
                      exponent=spec.setting("postfilter_exponent"), compiled=compiled)


def postfilter_gains(magnitude: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The post-filter's factor for each frame of a whole (frames, bins) noisy magnitude,
    float32, equal to what a stream applies frame by frame (training puts it in the loss)."""
    wiener = postfilter_wiener(spec)
    out = np.empty(np.shape(magnitude), np.float32)
    for t, frame in enumerate(np.asarray(magnitude, np.float64)):
        out[t] = wiener.update(frame)
    return out


class _Packed:
    """Named 1-D buffers laid end to end in one array (``data``), in ``order`` first, with
    their start offsets and the total as ``offsets``."""

    def __init__(self, dtype, sizes: dict, order: tuple = ()):
        names = list(order) + [k for k in sizes if k not in order]
        starts = np.cumsum([0] + [sizes[k] for k in names])
        self.data = np.zeros(int(starts[-1]), dtype)
        self.offsets = starts
        self._views = {k: self.data[starts[i]:starts[i + 1]] for i, k in enumerate(names)}

    def __getitem__(self, name: str) -> np.ndarray:
        return self._views[name]


class FrameProcessor:
    """Frame-by-frame analysis, features, context and synthesis with preallocated buffers.

    Call ``analyze(hop_samples)`` then ``synthesize(model_out)`` once per hop; ``min_gain``
    and ``postfilter`` are fixed at construction. The results
    equal the offline functions above (the tests check it). Per frame nothing is
    allocated and few numpy calls are made, since at n_fft = 256 their fixed cost, not
    arithmetic, dominates:

    * input and overlap-add buffers are long strips read through a moving window, so
      frames are not shifted sample by sample (one copy every ``_STRIP`` frames);
    * analysis and synthesis are numpy's own rfft and irfft (float64, the offline path's
      numbers), called as ufuncs into preallocated buffers;
    * features are written straight into the newest column of ``context``, the model
      input for context models (time ascending, last column = current frame);
    * with the spec's ``lookahead_frames`` L, the spectrum and magnitude that synthesis
      uses are L frames old (a delay line of L frames; the features are the newest
      frame's), so the output is L hops later and the model hears L frames after the one
      its mask is applied to;
    * with ``compiled`` (default: when numba is installed) a frame is three calls of
      runtime.dsp_kernels' loops (analysis, post-filter, synthesis; with the FFTs inside
      them for power-of-two n_fft, beside numpy's pocketfft otherwise) instead of about
      forty numpy calls, to the same numbers within rounding.
    """

    _STRIP = 128  # frames between strip rewinds
    #: Frames processed together by ``analyze_block``/``synthesize_block`` at most.
    BLOCK = 64
    #: Fewer frames than this go through the frame path one by one: a block's fixed cost is
    #: only repaid from about that many frames on. Counted on the Cortex-A76 model (benchmarks/
    #: README.md): the compiled frame costs what a block of about 9 (16 kHz) to 11 (8 kHz)
    #: frames costs per frame; the numpy frame what a block of about 3 does.
    MIN_BLOCK = {True: 12, False: 3}

    def __init__(self, spec: FeatureSpec, min_gain: float = 0.0, postfilter: WienerGain | None = None,
                 compiled: bool | None = None):
        self.spec = spec
        self._kernels = compiled_kernels(compiled)
        self.min_block = self.MIN_BLOCK[self._kernels is not None]
        self.min_gain = float(min_gain)
        self.postfilter = postfilter
        n, hop, bins = spec.n_fft, spec.hop, spec.n_bins
        if n % 2:
            raise SpecError("n_fft must be even")
        self._rfft = _fast_rfft()
        self._irfft = _fast_irfft(n)
        strip = n + hop * self._STRIP
        # The buffers the fused kernels use are carved from one array per type (their
        # layout in dsp_kernels.PACKED_*), because numba unboxes every array argument of a
        # call, about 0.2 us each: a frame's two calls take 6 and 7 arguments, not 15 and 21.
        m = n // 2
        # the kernels read the fields in their order; the numpy path takes any
        layouts = (self._kernels.PACKED_F64, self._kernels.PACKED_C128) if self._kernels else ((), ())
        f64 = _Packed(np.float64, dict(
            strip_in=strip, ola=strip, window=n, windowed=n, inv_std=bins, mean_scaled=bins, magnitude=bins,
            synth=n, synthesis_gain=hop, output=hop, scalars=4), layouts[0])
        c128 = _Packed(np.complex128, dict(z=m, stage=max(m - 1, 1), split=m + 1, spectrum=bins, out_spec=bins),
                       layouts[1])
        self._packed_f64, self._packed_c128 = f64, c128
        self._in, self._ola, self._windowed, self.magnitude = f64["strip_in"], f64["ola"], f64["windowed"], f64["magnitude"]
        self._window, self._gain = f64["window"], f64["synthesis_gain"]
        self._window[:] = analysis_window(spec)
        self._gain[:] = synthesis_gain(spec)
        mean, inv_std = normalisation(spec)
        self._inv_std, self._mean_scaled = f64["inv_std"], f64["mean_scaled"]
        self._inv_std[:] = inv_std
        self._mean_scaled[:] = mean * inv_std
        self._pos = 0  # frame start inside both strips
        self.spectrum, self._out_spec = c128["spectrum"], c128["out_spec"]
        self._feat = np.zeros(bins)
        # (bins, context), time ascending; the model input for context models.
        self.context = np.zeros((bins, spec.context_frames), np.float32)
        self._ctx_scratch = np.zeros((bins, max(spec.context_frames - 1, 1)), np.float32)
        self.features = self.context[:, -1]  # a view: the current frame's features
        self._synth = f64["synth"]
        self._mask = np.zeros(bins)
        look = spec.lookahead_frames
        # the lookahead's delay line, oldest first, and the frame taken out of it
        self._line_spec = np.zeros((look, bins), np.complex128) if look else None
        self._line_mag = np.zeros((look, bins)) if look else None
        self._held_spec, self._held_mag = np.zeros(bins, np.complex128), np.zeros(bins)
        # frames of the delay line that precede the signal: silent, and kept from the
        # post-filter, whose noise floor would otherwise start at zero
        self._unborn = look
        self.output = f64["output"]
        # compiled and n a power of two: a frame is one analysis call and one synthesis call
        # (the post-filter inside it when it is compiled too), their fixed arguments bound here
        self._analysis_args = self._synthesis_args = None
        compiled_postfilter = postfilter is None or postfilter.compiled
        if self._kernels is not None and n >= 4 and n & (n - 1) == 0 and compiled_postfilter:
            order, stage, split = self._kernels.fft_tables(n)
            c128["stage"][:len(stage)] = stage
            c128["split"][:] = split
            f64["scalars"][:] = [spec.log_eps, self.min_gain, postfilter is not None, spec.output_kind == "magnitude"]
            layout = np.concatenate([f64.offsets, c128.offsets, order]).astype(np.int64)
            self._analysis_args = (f64.data, c128.data, layout, self.context)
            wiener = postfilter if postfilter is not None else WienerGain(spec, compiled=False)
            self._synthesis_args = (f64.data, c128.data, layout, wiener._packed, wiener._counters)

    @property
    def compiled(self) -> bool:
        """The frame runs runtime.dsp_kernels' compiled loops."""
        return self._kernels is not None

    def reset(self) -> None:
        for buf in (self._in, self._ola, self.context):
            buf.fill(0)
        if self._line_spec is not None:
            self._line_spec.fill(0)
            self._line_mag.fill(0)
        self._unborn = self.spec.lookahead_frames
        self._pos = 0
        if self.postfilter is not None:
            self.postfilter.reset()

    def complex_spectrum(self) -> np.ndarray:
        """A copy of the spectrum the next synthesis applies the mask to, complex (bins,):
        the newest frame's, or with a lookahead the one that many frames before it."""
        return self.spectrum.copy()

    def _advance(self) -> None:
        """Move the window one hop; rewind both strips when it reaches their end."""
        n, hop = self.spec.n_fft, self.spec.hop
        self._pos += hop
        if self._pos + n > len(self._in):
            self._rewind()

    def analyze(self, hop_samples: np.ndarray) -> None:
        """Take ``hop`` new samples; update spectrum, magnitude, features and context (with
        a lookahead: the features of the new frame, the spectrum and magnitude of the frame
        it delays)."""
        self._analyze(hop_samples)
        if self._line_spec is not None:
            self._delay_frame()

    def _delay_frame(self) -> None:
        """Put the new frame's spectrum and magnitude at the end of the delay line and the
        oldest frame's in their place."""
        line_s, line_m = self._line_spec, self._line_mag  # one frame: MAX_LOOKAHEAD_FRAMES
        np.copyto(self._held_spec, line_s[0])
        np.copyto(self._held_mag, line_m[0])
        np.copyto(line_s[0], self.spectrum)
        np.copyto(line_m[0], self.magnitude)
        np.copyto(self.spectrum, self._held_spec)
        np.copyto(self.magnitude, self._held_mag)

    def _analyze(self, hop_samples: np.ndarray) -> None:
        n, hop, pos = self.spec.n_fft, self.spec.hop, self._pos
        kernels = self._kernels
        if self._analysis_args is not None:
            kernels.analyze_packed(hop_samples, pos, *self._analysis_args)
            return
        if kernels is not None:
            kernels.window_frame(self._in, pos, hop_samples, self._window, self._windowed)
            self._rfft(self._windowed, self.spectrum)
            kernels.magnitude_features(self.spectrum, self.spec.log_eps, self._inv_std, self._mean_scaled,
                                       self.magnitude, self.context)
            return
        self._in[pos + n - hop:pos + n] = hop_samples
        np.multiply(self._in[pos:pos + n], self._window, out=self._windowed)
        self._rfft(self._windowed, self.spectrum)
        np.abs(self.spectrum, out=self.magnitude)
        if self.spec.context_frames > 1:
            np.copyto(self._ctx_scratch, self.context[:, 1:])
            np.copyto(self.context[:, :-1], self._ctx_scratch)
        self._features(self.magnitude, self._feat, self.features)

    def _features(self, magnitude, scratch, out) -> None:
        """Normalised log-magnitude features (``features()``'s numbers) of one frame or a
        block into ``out``, through a float64 ``scratch`` of the same shape."""
        np.add(magnitude, self.spec.log_eps, out=scratch)
        np.log(scratch, out=scratch)
        scratch *= self._inv_std
        np.subtract(scratch, self._mean_scaled, out=out, casting="same_kind")

    def _spectral_gain(self, model_out, magnitude, postfilter_factor, out):
        """The gain applied to the noisy spectrum, for one frame or a block: the model's mask
        (or its magnitude over the noisy one), times the post-filter's factor, floored at
        min_gain; in ``out`` unless it is the model's output unchanged."""
        gain = model_out
        if self.spec.output_kind == "magnitude":
            gain = np.divide(model_out, np.maximum(magnitude, 1e-12), out=out)
        if postfilter_factor is not None:
            gain = np.multiply(gain, postfilter_factor, out=out)
        if self.min_gain > 0:
            gain = np.maximum(gain, self.min_gain, out=out)
        return gain

    # ------------------------------------------------------------ blocks of frames

    def _block_buffers(self):
        """Scratch for BLOCK frames, made on the first block (a stream that only ever sees
        single frames never pays for it)."""
        if getattr(self, "_blk", None) is None:
            n, bins, ctx = self.spec.n_fft, self.spec.n_bins, self.spec.context_frames
            B, look = self.BLOCK, self.spec.lookahead_frames
            # with a lookahead the block's spectra and magnitudes follow the delay line's
            # frames, and synthesis reads from the line's first frame on
            synth_spectra, synth_magnitude = np.zeros((look + B, bins), np.complex128), np.zeros((look + B, bins))
            self._blk = dict(
                windowed=np.zeros((B, n)), spectra=synth_spectra[look:], magnitude=synth_magnitude[look:],
                synth_spectra=synth_spectra, synth_magnitude=synth_magnitude, feat=np.zeros((B, bins)),
                # features of the block after the ctx - 1 frames before it, time-major
                history=np.zeros((B + ctx - 1, bins), np.float32),
                mask=np.zeros((B, bins)), postfilter=np.zeros((B, bins)),
                out_spec=np.zeros((B, bins), np.complex128), synth=np.zeros((B, n)),
                gain=np.tile(self._gain, B))
        return self._blk

    def analyze_block(self, head: np.ndarray, body: np.ndarray) -> int:
        """Take the samples of K whole hops, ``head`` then ``body`` (K <= BLOCK), and analyse
        the K frames they complete at once: batched FFT and features. Returns K. The
        block's features are ``block_features``; then call ``synthesize_block``."""
        n, hop = self.spec.n_fft, self.spec.hop
        total = len(head) + len(body)
        k = total // hop
        if k * hop != total or not 0 < k <= self.BLOCK:
            raise ValueError(f"a block is 1..{self.BLOCK} whole hops, got {total} samples")
        b = self._block_buffers()
        if self._pos + (k - 1) * hop + n > len(self._in):
            self._rewind()
        start = self._pos + n - hop
        self._in[start:start + len(head)] = head
        self._in[start + len(head):start + total] = body
        strip = self._in[self._pos:self._pos + (k - 1) * hop + n]
        frames = np.lib.stride_tricks.as_strided(strip, (k, n), (hop * strip.itemsize, strip.itemsize),
                                                 writeable=False)
        windowed, spectra, mag, feat = b["windowed"][:k], b["spectra"][:k], b["magnitude"][:k], b["feat"][:k]
        np.multiply(frames, self._window, out=windowed)
        self._rfft(windowed, spectra)
        np.abs(spectra, out=mag)
        ctx = self.spec.context_frames
        history = b["history"]
        if ctx > 1:
            history[:ctx - 1] = self.context[:, 1:].T
        self._features(mag, feat, history[ctx - 1:ctx - 1 + k])
        self.context[:] = history[k - 1:k - 1 + ctx].T  # the per-frame path goes on from here
        look = self.spec.lookahead_frames
        if look:  # the delay line's frames before the block's, and its last frames into the line
            b["synth_spectra"][:look], b["synth_magnitude"][:look] = self._line_spec, self._line_mag
            self._line_spec[:] = b["synth_spectra"][k:k + look]
            self._line_mag[:] = b["synth_magnitude"][k:k + look]
        self._block_len = k
        return k

    @property
    def block_features(self) -> np.ndarray:
        """(K + ctx - 1, bins) float32 features of the block with the ctx - 1 frames before it."""
        return self._blk["history"][:self._block_len + self.spec.context_frames - 1]

    @property
    def block_magnitude(self) -> np.ndarray:
        """The magnitudes the block's synthesis applies its masks to."""
        return self._blk["synth_magnitude"][:self._block_len]

    def synthesize_block(self, model_out: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Apply the K model outputs (K, bins) to the block's spectra and write the K * hop
        final samples into ``out``: batched inverse FFT and overlap-add."""
        n, hop = self.spec.n_fft, self.spec.hop
        b, k = self._blk, self._block_len
        mag = b["synth_magnitude"][:k]
        factor = None
        if self.postfilter is not None:
            skip = min(self._unborn, k)  # the delay line's frames before the signal (silent)
            factor = b["postfilter"][:k]
            factor[:skip] = 1.0
            if skip < k:
                self.postfilter.update_block(mag[skip:], factor[skip:])
        self._unborn -= min(self._unborn, k)
        gain = self._spectral_gain(model_out, mag, factor, b["mask"][:k])
        out_spec, synth = b["out_spec"][:k], b["synth"][:k]
        np.multiply(b["synth_spectra"][:k], gain, out=out_spec)
        self._irfft(out_spec, synth)
        synth *= self._window
        pos = self._pos
        for r in range(n // hop):  # segment r of every frame lands r hops after its start
            self._ola[pos + r * hop:pos + r * hop + k * hop].reshape(k, hop)[...] += synth[:, r * hop:(r + 1) * hop]
        np.multiply(self._ola[pos:pos + k * hop], b["gain"][:k * hop], out=out)
        self._pos += k * hop
        if self._pos + n > len(self._in):
            self._rewind()
        return out

    def _rewind(self) -> None:
        """Move the last n - hop input samples and the pending overlap-add to the strips' start."""
        keep = self.spec.n_fft - self.spec.hop
        self._in[:keep] = self._in[self._pos:self._pos + keep]
        self._ola[:keep] = self._ola[self._pos:self._pos + keep]
        self._ola[keep:] = 0.0
        self._pos = 0

    def _synthesize_unborn(self, model_out: np.ndarray) -> np.ndarray:
        """synthesize() for a frame the delay line held before the signal began: its spectrum
        is zero, and the post-filter does not hear it."""
        postfilter, self.postfilter = self.postfilter, None
        scalars = self._packed_f64["scalars"]
        flag = scalars[2]
        scalars[2] = 0.0  # the compiled synthesis's post-filter switch
        try:
            self._unborn -= 1
            return self._synthesize(model_out)
        finally:
            self.postfilter, scalars[2] = postfilter, flag

    def synthesize(self, model_out: np.ndarray) -> np.ndarray:
        """Apply the model output (bins,) to the current spectrum and return ``hop`` final
        samples, in a buffer reused by the next call."""
        if self._unborn:  # a frame of the delay line from before the signal: silent, unfiltered
            return self._synthesize_unborn(model_out)
        return self._synthesize(model_out)

    def _synthesize(self, model_out: np.ndarray) -> np.ndarray:
        kernels = self._kernels
        if self._synthesis_args is not None:  # the kernel takes (bins,) or (1, bins)
            kernels.synthesize_packed(model_out, self._pos, *self._synthesis_args)
            self._pos += self.spec.hop  # _advance, inlined
            if self._pos + self.spec.n_fft > len(self._in):
                self._rewind()
            return self.output
        if model_out.ndim != 1:
            model_out = model_out.reshape(-1)
        n, hop, pos = self.spec.n_fft, self.spec.hop, self._pos
        factor = None if self.postfilter is None else self.postfilter.update(self.magnitude)
        if kernels is not None:
            kernels.apply_gain(self.spectrum, model_out, self.magnitude, self._mask if factor is None else factor,
                               factor is not None, self.spec.output_kind == "magnitude", self.min_gain,
                               self._out_spec)
            self._irfft(self._out_spec, self._synth)
            kernels.overlap_add(self._synth, self._window, self._ola, pos, self._gain, self.output)
            self._advance()
            return self.output
        gain = self._spectral_gain(model_out, self.magnitude, factor, self._mask)
        np.multiply(self.spectrum, gain, out=self._out_spec)
        self._irfft(self._out_spec, self._synth)
        self._synth *= self._window
        ola = self._ola[pos:pos + n]
        ola += self._synth
        np.multiply(ola[:hop], self._gain, out=self.output)
        self._advance()
        return self.output
