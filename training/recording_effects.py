"""What real recording does to speech before a denoiser hears it: rooms, microphones, channels.

Rooms are simulated with pyroomacoustics (image-source shoebox rooms); microphone and
channel responses use audiomentations' filters. Both libraries draw their own random
numbers, so every parameter here is drawn from the caller's generator and passed in as a
fixed value (min == max): a pair stays a function of (seed, index) alone.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .atomic_write import write_atomically

#: What the clean target of a reverberant pair is: the direct path and the reflections of
#: the first 50 ms ("early": the model removes noise and late reverberation, the part that
#: smears speech, but not the room's colour), the direct path alone ("dry"), or all of it
#: ("reverberant": the model only denoises).
REVERB_TARGETS = ("early", "dry", "reverberant")
EARLY_MS = 50.0
CHANNELS = ("handset", "headset", "telephone", "codec")


class RoomBank:
    """A fixed set of simulated room impulse responses, made once for (rate, count, seed)
    and kept in ``cache_dir`` (the dataset folder) so a resumed run does not simulate
    again. Rooms: 3-10 x 3-8 x 2.4-4 m, RT60 drawn log-uniformly in ``rt60``, source and
    microphone at least 0.4 m from the walls and 0.3-4 m apart."""

    def __init__(self, rate: int, count: int = 96, seed: int = 0, rt60=(0.1, 1.0),
                 cache_dir: Path | None = None):
        self.rate, self.count, self.seed, self.rt60 = rate, count, seed, tuple(rt60)
        key = hashlib.md5(json.dumps([rate, count, seed, self.rt60, 1]).encode()).hexdigest()[:10]
        path = Path(cache_dir) / f"rooms_{key}.npz" if cache_dir else None
        if path is not None and path.exists():
            data = np.load(path)
            self.responses = [data[f"h{i}"] for i in range(count)]
            self.info = json.loads(str(data["info"]))
            return
        self.responses, self.info = [], []
        rng = np.random.default_rng([seed, 7919])
        for _ in range(count):
            h, info = _simulate_room(rate, rng, self.rt60)
            self.responses.append(h)
            self.info.append(info)
        if path is not None:  # written whole, then renamed: shards may build it at once
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, lambda tmp: np.savez_compressed(
                tmp, info=json.dumps(self.info), **{f"h{i}": h for i, h in enumerate(self.responses)}))

    def pick(self, rng: np.random.Generator) -> np.ndarray:
        return self.responses[int(rng.integers(self.count))]


def _simulate_room(rate: int, rng: np.random.Generator, rt60_range) -> tuple[np.ndarray, dict]:
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 4.0)])
    rt60 = float(np.exp(rng.uniform(*np.log(rt60_range))))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # too reverberant for Sabine in this room: take the most it allows
        absorption, max_order = 0.01, 100
    room = pra.ShoeBox(dims, fs=rate, materials=pra.Material(float(absorption)),
                       max_order=int(min(max_order, 100)))
    margin = 0.4
    while True:
        src = rng.uniform(margin, dims - margin)
        mic = rng.uniform(margin, dims - margin)
        distance = float(np.linalg.norm(src - mic))
        if 0.3 <= distance <= 4.0:
            break
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    direct = int(np.argmax(np.abs(h)))
    h = h[max(0, direct - 8):]  # the propagation delay removed, so pairs stay aligned
    h /= np.max(np.abs(h))
    return h, {"dims": dims.round(2).tolist(), "rt60": round(rt60, 3), "distance": round(distance, 2)}


def reverberate(speech: np.ndarray, h: np.ndarray, rate: int, target: str = "early"):
    """(what the microphone hears, the clean target), both as long as ``speech`` and
    aligned with it (the direct path at the start of h)."""
    from scipy.signal import fftconvolve

    if target not in REVERB_TARGETS:
        raise ValueError(f"reverb target must be one of {REVERB_TARGETS}, got {target!r}")
    n = len(speech)
    wet = fftconvolve(speech, h)[:n]
    if target == "reverberant":
        return wet, wet
    direct = int(np.argmax(np.abs(h)))
    if target == "dry":
        keep = direct + 1
        early = h[:keep]
    else:
        keep = direct + int(EARLY_MS * rate / 1000)
        early = h[:keep].copy()
        fade = min(len(early), max(1, int(0.005 * rate)))  # 5 ms fade: no click at the cut
        early[-fade:] *= np.linspace(1.0, 0.0, fade)
    return wet, fftconvolve(speech, early)[:n]


def channel_filter(kind: str, rate: int, rng: np.random.Generator):
    """A linear microphone/channel response drawn from rng, as a function of audio:
    handset (a narrow band-pass), headset (high-pass and a presence peak), telephone
    (300-3400 Hz or so) or codec (a low-bit-rate codec's low-pass)."""
    import audiomentations as am

    nyquist = rate / 2

    def fixed(cls, **ranges):
        kw = {}
        for name, (lo, hi) in ranges.items():
            # integers are filter roll-offs, in the 6 dB/octave steps Butterworth filters have
            value = float(rng.uniform(lo, hi)) if isinstance(lo, float) else int(rng.choice(range(lo, hi + 1, 6)))
            kw[f"min_{name}"] = kw[f"max_{name}"] = value
        return cls(p=1.0, **kw)

    if kind == "handset":
        stages = [fixed(am.HighPassFilter, cutoff_freq=(250.0, 500.0), rolloff=(12, 24)),
                  fixed(am.LowPassFilter, cutoff_freq=(min(2800.0, 0.7 * nyquist), min(3800.0, 0.95 * nyquist)),
                        rolloff=(12, 24)),
                  fixed(am.PeakingFilter, center_freq=(800.0, min(2500.0, 0.6 * nyquist)),
                        gain_db=(-6.0, 8.0), q=(0.7, 2.0))]
    elif kind == "headset":
        stages = [fixed(am.HighPassFilter, cutoff_freq=(60.0, 200.0), rolloff=(12, 24)),
                  fixed(am.PeakingFilter, center_freq=(min(2000.0, 0.5 * nyquist), min(3500.0, 0.85 * nyquist)),
                        gain_db=(2.0, 8.0), q=(0.7, 1.5))]
    elif kind == "telephone":
        stages = [fixed(am.HighPassFilter, cutoff_freq=(200.0, 400.0), rolloff=(18, 24)),
                  fixed(am.LowPassFilter, cutoff_freq=(min(3000.0, 0.75 * nyquist), min(3600.0, 0.9 * nyquist)),
                        rolloff=(18, 24))]
    elif kind == "codec":
        stages = [fixed(am.LowPassFilter, cutoff_freq=(min(2000.0, 0.5 * nyquist), min(3200.0, 0.8 * nyquist)),
                        rolloff=(24, 36))]
    else:
        raise ValueError(f"channel must be one of {CHANNELS}, got {kind!r}")

    def apply(audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio, dtype=np.float32)
        for stage in stages:
            x = stage(samples=x, sample_rate=rate)
        return x.astype(np.float64)

    return apply


def clip(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Hard clipping of the loudest 0.5-5% of samples (an overdriven input stage);
    returns the clipped audio and the threshold."""
    threshold = float(np.percentile(np.abs(audio), 100 - rng.uniform(0.5, 5.0)))
    return np.clip(audio, -threshold, threshold), threshold


def noise_events(noise: np.ndarray, events: list[np.ndarray], rate: int, rng: np.random.Generator) -> np.ndarray:
    """The noise with short events (other recorded noises, 0.2-1.5 s) dropped in at random
    onsets, 6 dB below to 6 dB above the noise's level, with 10 ms ramps: the doors, dishes
    and horns that start and stop during a sentence."""
    out = noise.copy()
    level = np.sqrt(np.mean(noise ** 2)) + 1e-12
    ramp = max(1, int(0.01 * rate))
    for event in events:
        length = min(len(event), int(rng.uniform(0.2, 1.5) * rate), len(out))
        if length <= 2 * ramp:
            continue
        start = int(rng.integers(0, len(event) - length + 1))
        piece = event[start:start + length].copy()
        piece *= level * 10 ** (rng.uniform(-6.0, 6.0) / 20) / (np.sqrt(np.mean(piece ** 2)) + 1e-12)
        piece[:ramp] *= np.linspace(0, 1, ramp)
        piece[-ramp:] *= np.linspace(1, 0, ramp)
        at = int(rng.integers(0, len(out) - length + 1))
        out[at:at + length] += piece
    return out
