"""Noise made in code, because recorded noise is scarce: babble, coloured noise, hum,
transients, and (opt-in, ``EXTRA_KINDS``) music, tonal alarms and modulated noise."""
from __future__ import annotations

import numpy as np

KINDS = ("babble", "coloured", "hum", "transients")
#: Kinds added later; opt-in (make_dataset --more-noise-kinds) so older datasets keep their bytes.
EXTRA_KINDS = ("music", "tonal", "modulated")


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


def music(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Background music: chords of harmonic notes with plucked or held envelopes on a
    random tempo, with a kick and hi-hat under half of the clips."""
    t_beat = 60.0 / rng.uniform(60, 180)
    out = np.zeros(length)
    root = int(rng.integers(40, 64))  # MIDI note of the key
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    decay = rng.uniform(0.1, 1.5)  # seconds: plucked to held
    start = 0
    while start < length:
        dur = int(rate * t_beat * rng.choice([0.5, 1, 2]))
        n = min(dur, length - start)
        tt = np.arange(n) / rate
        env = np.exp(-tt / decay) * np.minimum(1.0, tt / 0.01)
        for _ in range(int(rng.integers(1, 5))):
            note = root + scale[int(rng.integers(7))] + 12 * int(rng.integers(0, 3))
            f0 = 440.0 * 2 ** ((note - 69) / 12)
            for k in range(1, 12):
                if k * f0 >= rate / 2:
                    break
                out[start:start + n] += env * rng.uniform(0.3, 1.0) / k ** 1.2 * np.sin(
                    2 * np.pi * k * f0 * tt + rng.uniform(0, 2 * np.pi))
        start += dur
    if rng.random() < 0.5:  # drums
        beat = int(rate * t_beat)
        for s in range(0, length, beat):
            n = min(int(0.15 * rate), length - s)
            tt = np.arange(n) / rate
            out[s:s + n] += 1.5 * np.exp(-tt / 0.04) * np.sin(2 * np.pi * 60 * tt)
            h = s + beat // 2
            if h < length:
                m = min(int(0.03 * rate), length - h)
                out[h:h + m] += 0.3 * rng.standard_normal(m) * np.exp(-np.arange(m) / (0.005 * rate))
    return out + 1e-3 * np.std(out) * rng.standard_normal(length)


def tonal(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Sirens, alarms and beeps: a swept or on/off tone (300-2500 Hz) with a few harmonics."""
    t = np.arange(length) / rate
    f_c = rng.uniform(300, 2500)
    if rng.random() < 0.5:  # siren: sinusoidal or saw sweep of the pitch
        rate_hz, depth = rng.uniform(0.2, 4.0), rng.uniform(0.1, 0.4)
        phase_mod = np.sin(2 * np.pi * rate_hz * t) if rng.random() < 0.5 else 2 * ((rate_hz * t) % 1) - 1
        freq = f_c * (1 + depth * phase_mod)
        gate = np.ones(length)
    else:  # beeps
        freq = np.full(length, f_c)
        period, duty = rng.uniform(0.15, 1.5), rng.uniform(0.2, 0.7)
        gate = ((t / period) % 1 < duty).astype(float)
        gate = np.convolve(gate, np.ones(40) / 40, mode="same")  # soft edges
    phase = 2 * np.pi * np.cumsum(freq) / rate
    out = np.zeros(length)
    for k in range(1, 5):
        out += np.where(k * freq < rate / 2, rng.uniform(0.1, 1.0) / k, 0.0) * np.sin(k * phase)
    return out * gate + 0.005 * rng.standard_normal(length)


def modulated(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Traffic, wind or machinery: coloured noise through a resonance that drifts in
    frequency, under a slow level swell of 6-20 dB."""
    n_fft = 256
    hop = n_fft // 2
    base = coloured(length + n_fft, rate, rng)
    frames = 1 + (len(base) - n_fft) // hop
    f = np.fft.rfftfreq(n_fft, 1.0 / rate)
    t_frames = np.arange(frames) * hop / rate
    centre = np.exp(np.log(rng.uniform(150, 600)) + rng.uniform(0.3, 1.2) * np.sin(
        2 * np.pi * rng.uniform(0.05, 0.5) * t_frames + rng.uniform(0, 6.3)))
    width = rng.uniform(0.3, 1.0)  # octaves
    window = np.hanning(n_fft + 1)[:-1]
    out = np.zeros(len(base))
    for i in range(frames):
        seg = base[i * hop: i * hop + n_fft] * window
        gain = 0.2 + np.exp(-0.5 * (np.log2((f + 1.0) / centre[i]) / width) ** 2)
        out[i * hop: i * hop + n_fft] += np.fft.irfft(np.fft.rfft(seg) * gain, n=n_fft)
    swell_db = rng.uniform(6, 20) * 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(0.03, 0.3)
                                                       * np.arange(len(base)) / rate + rng.uniform(0, 6.3)))
    return (out * 10 ** ((swell_db - swell_db.max()) / 20))[:length]


def speed_change(noise: np.ndarray, factor: float) -> np.ndarray:
    """Play a noise ``factor`` times faster (pitch and tempo up together), by linear
    interpolation after a low-pass at the new Nyquist when speeding up: one recording
    becomes many spectrally different ones."""
    if factor > 1:
        spectrum = np.fft.rfft(noise)
        spectrum[int(len(spectrum) / factor):] = 0
        noise = np.fft.irfft(spectrum, n=len(noise))
    n_out = max(2, int(len(noise) / factor))
    positions = np.arange(n_out) * factor
    return np.interp(positions, np.arange(len(noise)), noise)


def babble(length: int, speech_segments: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Several talkers at once from other speakers' speech, each at its own level."""
    from .mixing import fit_length, power

    out = np.zeros(length)
    for seg in speech_segments:
        seg = fit_length(seg, length, rng)
        out += seg / np.sqrt(max(power(seg), 1e-20)) * rng.uniform(0.5, 1.0)
    return out


def crowd(length: int, rate: int, talkers: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A room full of people (canteen, bar, station): many talkers, each starting anywhere
    and fading in and out, so no single voice stands out as it does in 3-7-talker babble;
    with probability 0.5 a layer of clatter (transients) under it."""
    from .mixing import fit_length, power

    out = np.zeros(length)
    t = np.arange(length) / rate
    for seg in talkers:
        seg = fit_length(seg, length, rng)
        seg = np.roll(seg, int(rng.integers(length)))
        swell = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3))
        out += seg / np.sqrt(max(power(seg), 1e-20)) * rng.uniform(0.3, 1.0) * swell
    if rng.random() < 0.5:
        clatter = transients(length, rate, rng)
        out += clatter * np.sqrt(power(out) / max(power(clatter), 1e-20)) * 10 ** (-rng.uniform(6, 20) / 20)
    return out


def generate(kind: str, length: int, rate: int, rng: np.random.Generator,
             speech_segments: list[np.ndarray] | None = None) -> np.ndarray:
    makers = {"coloured": coloured, "hum": hum, "transients": transients,
              "music": music, "tonal": tonal, "modulated": modulated}
    if kind in makers:
        return makers[kind](length, rate, rng)
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
