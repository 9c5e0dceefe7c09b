"""The streaming frame's arithmetic compiled with numba, when it is installed.

At one frame of 129 or 257 bins the cost of ``runtime.dsp``'s frame path is the fixed
cost of each numpy call, not the arithmetic: a frame makes about forty of them (the
post-filter alone twenty), and numpy's FFT gufuncs cost more to call than to run. These
kernels do the same steps in float64 as loops over the bins, so a frame makes three
calls: the analysis (window, real FFT, magnitude, features, context), the post-filter,
and the synthesis (gain, inverse real FFT, overlap-add). For an n_fft that is not a power
of two the FFTs stay numpy's pocketfft, called between the kernels.

runtime.dsp imports this module only when the compiled path is asked for (by default
when numba is installed: ``pip install -e ".[fast]"``, and TINY_DENOISE_COMPILED is not
0); without it the numpy path gives the same numbers to rounding. The functions are
compiled on first use and cached on disk (numba's cache, beside this file or under
NUMBA_CACHE_DIR): the first process compiles for about 5 s, later ones load them in
about 1.5 s of CPU, numba's import included.
"""
from __future__ import annotations

import math

import numba
import numpy as np

_njit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


@_njit
def window_frame(strip, pos, hop_samples, window, windowed):
    """Write the new hop at the end of the frame that starts at ``pos`` in the input
    strip, and the windowed frame into ``windowed``."""
    n, hop = window.shape[0], hop_samples.shape[0]
    start = pos + n - hop
    for j in range(hop):
        strip[start + j] = hop_samples[j]
    for j in range(n):
        windowed[j] = strip[pos + j] * window[j]

@_njit
def magnitude_features(spectrum, log_eps, inv_std, mean_scaled, magnitude, context):
    """|X|, and the normalised log-magnitude features as the newest column of the
    (bins, ctx) float32 context after shifting it one frame older."""
    bins, ctx = context.shape
    for b in range(bins):
        re, im = spectrum[b].real, spectrum[b].imag
        m = math.sqrt(re * re + im * im)
        magnitude[b] = m
        for c in range(ctx - 1):
            context[b, c] = context[b, c + 1]
        context[b, ctx - 1] = np.float32(math.log(m + log_eps) * inv_std[b] - mean_scaled[b])

@_njit
def _wiener(magnitude, slots, smoothed, others, prev_clean, gain, factor, counters, params):
    """One frame of runtime.dsp.WienerGain.update. counters: [frames seen, warm-up
    frames left, frames per slot]; params: [smooth, bias, alpha_dd, floor, exponent].
    ``gain`` gets the Wiener gain, ``factor`` its power ``exponent``."""
    bins = magnitude.shape[0]
    if counters[1] > 0:
        counters[1] -= 1
        for b in range(bins):
            gain[b] = 1.0
            factor[b] = 1.0
        return
    smooth, bias, alpha, floor, exponent = params[0], params[1], params[2], params[3], params[4]
    t, per_slot = counters[0], counters[2]
    n_slots = slots.shape[0]
    k, first = t // per_slot, t % per_slot
    s = k % n_slots
    if first == 0:  # a new slot: the minimum of the others is taken once per slot
        for b in range(bins):
            slots[s, b] = np.inf
        for b in range(bins):
            m = slots[0, b]
            for u in range(1, n_slots):
                if slots[u, b] < m:
                    m = slots[u, b]
            others[b] = m
    keep, fresh = smooth / (1 - smooth), 1 - smooth
    for b in range(bins):
        p = magnitude[b] * magnitude[b]
        if t == 0:
            sm = p
        else:
            sm = (smoothed[b] * keep + p) * fresh
        smoothed[b] = sm
        if first == 0 or sm < slots[s, b]:
            slots[s, b] = sm
        noise = min(others[b], slots[s, b]) * bias
        if noise < 1e-12:
            noise = 1e-12
        post = p / noise - 1.0
        if post < 0.0:
            post = 0.0
        prior = prev_clean[b] / noise * alpha + post * (1 - alpha)
        g = prior / (prior + 1.0)
        if g < floor:
            g = floor
        gain[b] = g
        prev_clean[b] = g * g * p
        if exponent == 1.0:
            factor[b] = g
        elif exponent == 0.5:
            factor[b] = math.sqrt(g)
        elif exponent == 0.25:
            factor[b] = math.sqrt(math.sqrt(g))
        else:
            factor[b] = math.exp(exponent * math.log(g))
    counters[0] = t + 1

@_njit
def wiener_frame(magnitude, slots, state, counters, params):
    """_wiener on WienerGain's state rows: smoothed, others, prev_clean, gain, factor."""
    _wiener(magnitude, slots, state[0], state[1], state[2], state[3], state[4], counters, params)


@_njit
def wiener_rows(magnitudes, slots, state, factors, counters, params):
    """_wiener for consecutive frames (K, bins): ``factors`` gets each frame's."""
    for i in range(magnitudes.shape[0]):
        _wiener(magnitudes[i], slots, state[0], state[1], state[2], state[3], factors[i], counters, params)


@_njit
def apply_gain(spectrum, model_out, magnitude, factor, use_factor, magnitude_output, min_gain, out_spec):
    """The enhanced spectrum: the noisy one times the model's mask (or its magnitude
    over the noisy one), times the post-filter's factor, floored at min_gain."""
    for b in range(spectrum.shape[0]):
        g = np.float64(model_out[b])
        if magnitude_output:
            g = g / max(magnitude[b], 1e-12)
        if use_factor:
            g = g * factor[b]
        if min_gain > 0 and g < min_gain:
            g = min_gain
        out_spec[b] = spectrum[b] * g

@_njit
def overlap_add(synth, window, ola, pos, synthesis_gain, output):
    """Window the inverse FFT's frame, add it at ``pos`` and write the hop that became
    final, normalised."""
    n, hop = synth.shape[0], output.shape[0]
    for j in range(n):
        ola[pos + j] += synth[j] * window[j]
    for j in range(hop):
        output[j] = ola[pos + j] * synthesis_gain[j]


# ---------------------------------------------------------------- the FFT inside the kernels
# numpy's FFT cannot be called from compiled code, and from Python each call of its gufunc
# costs more than the transform at these sizes (about 40k of the 70k instructions of an
# 8 kHz frame's analysis on the Cortex-A76 model). So for power-of-two n_fft the frame's two
# transforms are done here, as the classic real FFT of n points through a complex FFT of
# n/2 (iterative radix 2, with the tables fft_tables makes), inside the analysis and the
# synthesis kernels: one compiled call each.


def fft_tables(n: int):
    """(bit-reversal permutation, twiddles, real-split twiddles) for a real FFT of n points
    (n a power of two, at least 4), computed in float64 by numpy. The twiddles of the
    stage whose butterflies span 2h points are entries h - 1 .. 2h - 2, in order."""
    m = n // 2
    bits = m.bit_length() - 1
    order = np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(m)], np.int64)
    halves = [1 << s for s in range(bits)]
    stage = np.concatenate([np.exp(-1j * np.pi * np.arange(h) / h) for h in halves]) if halves else np.ones(1, complex)
    split = np.exp(-2j * np.pi * np.arange(m + 1) / n)
    return order, stage, split


@_njit
def _complex_fft(z, order, stage):
    """In place: the DFT of z (length m, a power of two), radix 2 decimation in time with
    the stages taken two at a time (after bit reversal, the first two without multiplies)."""
    m = z.shape[0]
    for i in range(m):
        j = order[i]
        if j > i:
            z[i], z[j] = z[j], z[i]
    half = 1
    if m >= 4:  # the first two stages at once: their twiddles are 1 and -i, no multiplies
        for top in range(0, m, 4):
            x0, x1, x2, x3 = z[top], z[top + 1], z[top + 2], z[top + 3]
            a0r, a0i = x0.real + x1.real, x0.imag + x1.imag
            a1r, a1i = x0.real - x1.real, x0.imag - x1.imag
            a2r, a2i = x2.real + x3.real, x2.imag + x3.imag
            a3r, a3i = x2.real - x3.real, x2.imag - x3.imag
            z[top] = complex(a0r + a2r, a0i + a2i)
            z[top + 2] = complex(a0r - a2r, a0i - a2i)
            z[top + 1] = complex(a1r + a3i, a1i - a3r)  # a1 + (-i) a3
            z[top + 3] = complex(a1r - a3i, a1i + a3r)
        half = 4
    while 2 * half < m:  # then two stages (half, 2 half) a pass: each point read and written once
        h, size = half, 4 * half
        for k in range(h):
            w, v = stage[h - 1 + k], stage[2 * h - 1 + k]  # the stages' twiddles; -i v for the odd pair
            wr, wi, vr, vi = w.real, w.imag, v.real, v.imag
            for i0 in range(k, m, size):
                i1, i2, i3 = i0 + h, i0 + 2 * h, i0 + 3 * h
                x0, x1, x2, x3 = z[i0], z[i1], z[i2], z[i3]
                tr, ti = x1.real * wr - x1.imag * wi, x1.real * wi + x1.imag * wr
                a0r, a0i, a1r, a1i = x0.real + tr, x0.imag + ti, x0.real - tr, x0.imag - ti
                tr, ti = x3.real * wr - x3.imag * wi, x3.real * wi + x3.imag * wr
                a2r, a2i, a3r, a3i = x2.real + tr, x2.imag + ti, x2.real - tr, x2.imag - ti
                tr, ti = a2r * vr - a2i * vi, a2r * vi + a2i * vr  # v a2
                z[i0] = complex(a0r + tr, a0i + ti)
                z[i2] = complex(a0r - tr, a0i - ti)
                tr, ti = a3r * vi + a3i * vr, a3i * vi - a3r * vr  # -i v a3 = (v a3).imag - i (v a3).real
                z[i1] = complex(a1r + tr, a1i + ti)
                z[i3] = complex(a1r - tr, a1i - ti)
        half = size
    while half < m:  # a last single stage when log2(m) leaves one over
        size = 2 * half
        for k in range(half):
            w = stage[half - 1 + k]
            wr, wi = w.real, w.imag
            for top in range(k, m, size):
                b = z[top + half]
                br = b.real * wr - b.imag * wi
                bi = b.real * wi + b.imag * wr
                a = z[top]
                z[top] = complex(a.real + br, a.imag + bi)
                z[top + half] = complex(a.real - br, a.imag - bi)
        half = size


@_njit
def _real_fft(x, z, order, stage, split, out):
    """rfft of the real x (n) into out (n/2 + 1), through z (n/2) as scratch."""
    m = z.shape[0]
    for k in range(m):
        z[k] = complex(x[2 * k], x[2 * k + 1])
    _complex_fft(z, order, stage)
    out[0] = complex(z[0].real + z[0].imag, 0.0)
    out[m] = complex(z[0].real - z[0].imag, 0.0)
    for k in range(1, m):
        a, b = z[k], z[m - k]
        # even = (a + conj b) / 2, odd = -i (a - conj b) / 2, out = even + split * odd
        er, ei = 0.5 * (a.real + b.real), 0.5 * (a.imag - b.imag)
        orr, oi = 0.5 * (a.imag + b.imag), -0.5 * (a.real - b.real)
        w = split[k]
        out[k] = complex(er + w.real * orr - w.imag * oi, ei + w.real * oi + w.imag * orr)


@_njit
def _inverse_real_fft(spectrum, z, order, stage, split, out):
    """irfft of spectrum (n/2 + 1) into the real out (n), as numpy's: the imaginary parts
    of the first and last bins are ignored. The inverse is the forward transform of the
    conjugate, conjugated."""
    m = z.shape[0]
    first, last = spectrum[0].real, spectrum[m].real
    z[0] = complex(0.5 * (first + last), -0.5 * (first - last))
    for k in range(1, m):
        a, b = spectrum[k], spectrum[m - k]
        # even = (a + conj b) / 2, odd = i conj(split) (a - conj b) / 2; z = conj(even + odd)
        er, ei = 0.5 * (a.real + b.real), 0.5 * (a.imag - b.imag)
        dr, di = 0.5 * (a.real - b.real), 0.5 * (a.imag + b.imag)
        w = split[k]
        pr, pi = w.real * dr + w.imag * di, w.real * di - w.imag * dr  # conj(split) * d
        z[k] = complex(er - pi, -(ei + pr))
    _complex_fft(z, order, stage)
    scale = 1.0 / m
    for k in range(m):
        out[2 * k] = z[k].real * scale
        out[2 * k + 1] = -z[k].imag * scale


@_njit
def analyze_frame(hop_samples, pos, strip, window, windowed, z, order, stage, split,
                  spectrum, log_eps, inv_std, mean_scaled, magnitude, context):
    """window_frame, the rfft and magnitude_features in one call."""
    window_frame(strip, pos, hop_samples, window, windowed)
    _real_fft(windowed, z, order, stage, split, spectrum)
    magnitude_features(spectrum, log_eps, inv_std, mean_scaled, magnitude, context)


@_njit
def synthesize_frame(model_out, pos, spectrum, magnitude, slots, state, counters, params, postfilter,
                     magnitude_output, min_gain, out_spec, z, order, stage, split, synth, window, ola,
                     synthesis_gain, output):
    """The post-filter's update (when ``postfilter``; WienerGain's arrays), apply_gain, the
    inverse rfft and overlap_add in one call."""
    if postfilter:
        _wiener(magnitude, slots, state[0], state[1], state[2], state[3], state[4], counters, params)
    apply_gain(spectrum, model_out.reshape(-1), magnitude, state[4], postfilter, magnitude_output, min_gain, out_spec)
    _inverse_real_fft(out_spec, z, order, stage, split, synth)
    overlap_add(synth, window, ola, pos, synthesis_gain, output)


# ---------------------------------------------------------------- packed arguments
# numba unboxes each array argument of a call from Python (about 0.2 us each here), which
# at 15 and 21 arguments cost a frame more than its FFTs. runtime.dsp.FrameProcessor
# therefore lays its buffers end to end in one float64 and one complex128 array, in these
# orders, and passes the start offsets (and the FFT's bit-reversal order after them) as
# one int64 array; the kernels below cut the views back out, which costs nothing.

PACKED_F64 = ("strip_in", "ola", "window", "windowed", "inv_std", "mean_scaled", "magnitude",
              "synth", "synthesis_gain", "output", "scalars")
PACKED_C128 = ("z", "stage", "split", "spectrum", "out_spec")
_NF = len(PACKED_F64)
_C = _NF + 1  # where the complex offsets start in the layout
_ORDER = _C + len(PACKED_C128) + 1  # where the bit-reversal order starts
(_IN, _OLA, _WINDOW, _WINDOWED, _INV_STD, _MEAN_SCALED, _MAGNITUDE, _SYNTH, _SYNTH_GAIN, _OUTPUT,
 _SCALARS) = range(_NF)
_Z, _STAGE, _SPLIT, _SPECTRUM, _OUT_SPEC = range(len(PACKED_C128))


@_njit
def _f64(f, layout, k):
    return f[layout[k]:layout[k + 1]]


@_njit
def _c128(c, layout, k):
    return c[layout[_C + k]:layout[_C + k + 1]]


@_njit
def analyze_packed(hop_samples, pos, f, c, layout, context):
    """analyze_frame on FrameProcessor's packed buffers (scalars: log_eps, min_gain,
    post-filter on, magnitude output)."""
    order = layout[_ORDER:]
    analyze_frame(hop_samples, pos, _f64(f, layout, _IN), _f64(f, layout, _WINDOW), _f64(f, layout, _WINDOWED),
                  _c128(c, layout, _Z), order, _c128(c, layout, _STAGE), _c128(c, layout, _SPLIT),
                  _c128(c, layout, _SPECTRUM), _f64(f, layout, _SCALARS)[0], _f64(f, layout, _INV_STD),
                  _f64(f, layout, _MEAN_SCALED), _f64(f, layout, _MAGNITUDE), context)


@_njit
def synthesize_packed(model_out, pos, f, c, layout, wiener, counters):
    """synthesize_frame on FrameProcessor's packed buffers and WienerGain's packed array
    (state rows, then the five parameters, then the slots)."""
    order = layout[_ORDER:]
    magnitude = _f64(f, layout, _MAGNITUDE)
    bins = magnitude.shape[0]
    state = wiener[:5 * bins].reshape(5, bins)
    params = wiener[5 * bins:5 * bins + 5]
    slots = wiener[5 * bins + 5:].reshape(-1, bins)
    scalars = _f64(f, layout, _SCALARS)
    synthesize_frame(model_out, pos, _c128(c, layout, _SPECTRUM), magnitude, slots, state, counters, params,
                     scalars[2] != 0.0, scalars[3] != 0.0, scalars[1], _c128(c, layout, _OUT_SPEC),
                     _c128(c, layout, _Z), order, _c128(c, layout, _STAGE), _c128(c, layout, _SPLIT),
                     _f64(f, layout, _SYNTH), _f64(f, layout, _WINDOW), _f64(f, layout, _OLA),
                     _f64(f, layout, _SYNTH_GAIN), _f64(f, layout, _OUTPUT))
