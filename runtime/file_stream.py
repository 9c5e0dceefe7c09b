"""Denoise audio files of any length in constant memory: read, resample, denoise, write by blocks.

``denoise_file`` gives what ``runtime.offline.denoise`` gives for the whole signal (the
same StreamDenoiser, soxr's streaming resampler, which equals its one-shot resampling
sample for sample, and the high band carried by the same per-frame band gain), but holds
only a few blocks in memory however long the file is. The output is written to a
temporary file beside the destination and renamed at the end, so an interrupted run or a
bad block never leaves a half-written file under the output's name.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

from .audio_io import warn_if_truncated, write_audio
from .dsp import analysis_window, band_frame_gains, band_start_bin, frame_centres
from .errors import AudioError
from .offline import HIGH_BAND_MODES, high_band_reference_hz, stream_for
from .stream import FROM_MODEL

BLOCK_SECONDS = 4.0


class _Fifo:
    """Samples with absolute positions: append at the end, read and drop from the front."""

    def __init__(self):
        self.start, self.data = 0, np.zeros(0)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def push(self, x) -> None:
        self.data = np.concatenate([self.data, np.asarray(x, dtype=np.float64)])

    def get(self, lo: int, hi: int) -> np.ndarray:
        """Samples lo..hi (absolute); positions before 0 or after the end read as zero."""
        out = np.zeros(hi - lo)
        a, b = max(lo, self.start), min(hi, self.end)
        if b > a:
            out[a - lo:b - lo] = self.data[a - self.start:b - self.start]
        return out

    def drop_before(self, pos: int) -> None:
        cut = min(max(0, pos - self.start), len(self.data))
        self.data, self.start = self.data[cut:], self.start + cut


class _Resampler:
    """soxr's streaming resampler (identity when the rates agree)."""

    def __init__(self, rate_in: int, rate_out: int):
        self.stream = None
        if rate_in != rate_out:
            import soxr

            self.stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float64", quality="HQ")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return np.asarray(x, dtype=np.float64)
        return self.stream.resample_chunk(np.asarray(x, dtype=np.float64), last=last)


class _BandGain:
    """runtime.dsp.band_gain computed as the signals arrive: per causal STFT frame, the
    square root of the output's over the input's energy above ``low_hz``, clipped to
    [0, 1], interpolated between frame centres, for each model-rate sample."""

    def __init__(self, spec, low_hz: float):
        self.spec = spec
        self.lo = band_start_bin(spec, low_hz)
        self.window = analysis_window(spec)
        self.ref, self.out, self.gains = _Fifo(), _Fifo(), _Fifo()
        self.last = None  # (index, gain) of the latest frame: the next interpolation starts there
        self.next_frame = 0

    def _centre(self, i):
        return frame_centres(i, self.spec)

    def push(self, ref: np.ndarray, out: np.ndarray, total: int | None = None) -> None:
        """Add aligned input and output samples; ``total`` (the signal's length) at the end."""
        s = self.spec
        self.ref.push(ref)
        self.out.push(out)
        if total is None:  # frames whose last sample has arrived in both
            stop = min(self.ref.end, self.out.end) // s.hop
        else:
            stop = -(-(total + s.analysis_delay_samples) // s.hop)  # dsp.frame_count
        if stop > self.next_frame:  # all new frames at once: one batched FFT per signal
            first = self.next_frame
            lo, hi = (first + 1) * s.hop - s.n_fft, stop * s.hop
            spectra = [np.fft.rfft(np.lib.stride_tricks.sliding_window_view(buf.get(lo, hi), s.n_fft)[::s.hop]
                                   * self.window, axis=1) for buf in (self.ref, self.out)]
            self._emit(first, band_frame_gains(*spectra, self.lo))
            self.next_frame = stop
        if total is not None:  # past the last centre the gain stays the last frame's
            self._fill_to(total, self.last[1] if self.last else 1.0)
            if self.gains.end > total:  # one gain per signal sample, as band_gain returns
                self.gains.data = self.gains.data[:max(0, total - self.gains.start)]
        keep = self.next_frame * s.hop - s.n_fft
        self.ref.drop_before(keep)
        self.out.drop_before(keep)

    def _emit(self, first: int, gains: np.ndarray) -> None:
        """Per-sample gains up to the last new frame's centre, linear between centres."""
        latest = (first + len(gains) - 1, float(gains[-1]))
        centres = self._centre(np.arange(first, first + len(gains)))
        if self.last is None:  # before the first centre: the first frame's gain
            self._fill_to(int(np.floor(centres[0])) + 1, float(gains[0]))
        else:
            centres = np.concatenate([[self._centre(self.last[0])], centres])
            gains = np.concatenate([[self.last[1]], gains])
        t = np.arange(max(self.gains.end, 0), int(np.floor(centres[-1])) + 1)
        self.gains.push(np.interp(t, centres, gains))
        self.last = latest

    def _fill_to(self, end: int, value: float) -> None:
        if end > self.gains.end:
            self.gains.push(np.full(end - self.gains.end, value))


def file_rate(path) -> int:
    """The sample rate a file's header states, without decoding the audio (mp3 through
    librosa, as runtime.audio_io reads it)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".mp3":
            import librosa

            return int(librosa.get_samplerate(str(path)))
        import soundfile as sf

        return int(sf.info(str(path)).samplerate)
    except ImportError as exc:
        raise AudioError(f"{path}: reading this format needs {exc.name}") from None
    except Exception as exc:  # soundfile/audioread raise several types for unreadable headers
        raise AudioError(f"{path}: cannot read audio ({type(exc).__name__}: {exc})") from None


def scan_audio(path) -> None:
    """Check a whole file block by block (readable, not empty, no NaN/Inf) without holding
    it in memory; AudioError names the file and, for bad samples, the time."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.suffix.lower() == ".mp3":  # read whole (librosa), as runtime.audio_io does
        from .audio_io import read_audio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_audio(path, mono="downmix")
        return
    for _ in _blocks(path, sf):
        pass


def _blocks(path: Path, sf, block_seconds: float = BLOCK_SECONDS):
    """(mono float64 block, file rate, frames the header promises) for each block."""
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: cannot read audio ({type(exc).__name__}: {exc})") from None
    with f:
        rate, frames, channels = f.samplerate, f.frames, f.channels
        if frames == 0:
            raise AudioError(f"{path}: contains no samples")
        if channels > 1:
            warnings.warn(f"{path}: {channels} channels downmixed to mono", stacklevel=2)
        block = max(1, int(block_seconds * rate))
        seen = 0
        while True:
            try:
                x = f.read(block, dtype="float64", always_2d=True)
            except Exception as exc:
                raise AudioError(f"{path}: cannot read audio at {seen / rate:.2f} s "
                                 f"({type(exc).__name__}: {exc})") from None
            if len(x) == 0:
                break
            x = x.mean(axis=1) if channels > 1 else x[:, 0]
            bad = np.flatnonzero(~np.isfinite(x))
            if bad.size:
                raise AudioError(f"{path}: NaN or Inf samples at {(seen + bad[0]) / rate:.2f} s")
            seen += len(x)
            yield x, rate, frames
        if seen < frames:
            warnings.warn(f"{path}: truncated, the header promises {frames} samples but the file "
                          f"holds {seen}", stacklevel=2)
        else:
            warn_if_truncated(path, seen)
        if seen == 0:
            raise AudioError(f"{path}: contains no samples")


def denoise_file(in_path, out_path, model=None, *, num_threads: int = 1,
                 min_gain_db: float | str | None = FROM_MODEL, high_band: str = "gain",
                 postfilter: str | None = FROM_MODEL, subtype: str | None = None,
                 block_seconds: float = BLOCK_SECONDS, progress: bool = False) -> dict:
    """Denoise one file into another (format from the extension, the input's rate, mono),
    block by block. ``model``: a .tflite path, a StreamDenoiser or None (the bundled model
    for the file's rate, as runtime.denoise picks it). Returns
    {"seconds": audio seconds, "cpu_seconds": ..., "real_time_factor": ...}."""
    import soundfile as sf

    if high_band not in HIGH_BAND_MODES:
        raise AudioError(f"high_band must be one of {HIGH_BAND_MODES}, got {high_band!r}")
    in_path, out_path = Path(in_path), Path(out_path)
    if not in_path.is_file():
        raise AudioError(f"{in_path}: no such file")
    stream = stream_for(model, file_rate(in_path), num_threads=num_threads,
                        min_gain_db=min_gain_db, postfilter=postfilter)
    stream.reset()
    if in_path.suffix.lower() == ".mp3":
        return _denoise_whole(in_path, out_path, stream, high_band, subtype)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.partial-{os.getpid()}{out_path.suffix}")
    start, cpu0 = time.perf_counter(), time.process_time()
    try:
        seconds = _run(in_path, tmp, stream, high_band, subtype, block_seconds, progress, sf)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    wall = time.perf_counter() - start
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu0,
            "real_time_factor": wall / seconds if seconds else 0.0}


def _run(in_path, tmp, stream, high_band, subtype, block_seconds, progress, sf) -> float:
    spec, L = stream.spec, stream.latency_samples
    blocks = _blocks(in_path, sf, block_seconds)
    first = next(blocks)
    rate, frames = first[1], first[2]
    model_rate = stream.sample_rate
    same = rate == model_rate
    keep_high = not same and rate > model_rate and high_band == "gain"
    down, up = _Resampler(rate, model_rate), _Resampler(model_rate, rate)
    up_input = _Resampler(model_rate, rate) if keep_high else None
    band = _BandGain(spec, high_band_reference_hz(spec)) if keep_high else None
    x_fifo, back_fifo, low_fifo = _Fifo(), _Fifo(), _Fifo()  # file rate, aligned with x
    model_in, skipped = 0, 0  # model-rate samples fed, latency samples dropped from the output
    written = 0
    bar = _bar(frames / rate, progress, in_path)
    with sf.SoundFile(str(tmp), "w", samplerate=rate, channels=1, subtype=subtype) as out:

        ratio = model_rate / rate

        def emit(final: bool, n_total: int | None):
            """Write the file samples that every path has computed (all of them at the end)."""
            nonlocal written
            if final:
                ready = n_total
            else:
                ready = min(back_fifo.end, low_fifo.end, x_fifo.end) if keep_high else back_fifo.end
                if keep_high:  # and whose two model-rate gain neighbours are known
                    j = np.arange(written, ready)
                    known = np.floor(j * ratio).astype(int) + 1 < band.gains.end
                    ready = written + (len(j) if known.all() else int(np.argmin(known)))
            if ready <= written:
                return
            y = back_fifo.get(written, ready)
            if keep_high:  # np.interp(j * ratio, arange(len(gain)), gain), as runtime.offline
                g = band.gains
                p = np.arange(written, ready) * ratio
                i0 = np.floor(p).astype(int)
                last = g.end - 1 if final else None
                a = g.data[(np.minimum(i0, last) if final else i0) - g.start]
                b = g.data[(np.minimum(i0 + 1, last) if final else i0 + 1) - g.start]
                gain = a + (b - a) * (p - i0)
                if final:
                    gain = np.where(i0 >= last, g.data[last - g.start], gain)
                y = y + gain * (x_fifo.get(written, ready) - low_fifo.get(written, ready))
                g.drop_before(int(i0[-1]))
            out.write(y)
            written = ready
            for fifo in (back_fifo, low_fifo, x_fifo):
                fifo.drop_before(written)

        def feed(x, last: bool):
            nonlocal model_in, skipped
            y = down(x, last=last)
            model_in += len(y)
            o = np.concatenate([stream.process(y), stream.flush()]) if last else stream.process(y)
            drop = min(len(o), L - skipped)
            skipped += drop
            o = o[drop:]
            if last:  # exactly as many output samples as were fed (flush pads the tail)
                total_out = model_in
                o = o[:max(0, total_out - (back_model_len[0]))]
            back_model_len[0] += len(o)
            back_fifo.push(up(o, last=last))
            x_fifo.push(x)
            if keep_high:
                low_fifo.push(up_input(y, last=last))
                band.push(y, o, total=model_in if last else None)

        back_model_len = [0]
        n_seen = 0
        pending = first[0]
        for x, _, _ in blocks:
            feed(pending, last=False)
            n_seen += len(pending)
            emit(False, None)
            if bar is not None:
                bar.update(len(pending) / rate)
            pending = x
        feed(pending, last=True)
        n_seen += len(pending)
        emit(True, n_seen)
        if bar is not None:
            bar.update(len(pending) / rate)
            bar.close()
    return n_seen / rate


def _bar(total_seconds: float, enabled: bool, path):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=round(total_seconds, 2), unit="s", unit_scale=False, desc=Path(path).name,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio "
                           "[{elapsed}<{remaining}, {rate_fmt}]", leave=False)


def _denoise_whole(in_path, out_path, stream, high_band, subtype) -> dict:
    """MP3 input: read whole (its decoder here is librosa's), as the array API does."""
    from .audio_io import read_audio
    from .offline import denoise

    audio, rate = read_audio(in_path, mono="downmix")
    start = time.perf_counter()
    out = denoise(audio, rate, stream, high_band=high_band)
    tmp = out_path.with_name(f".{out_path.stem}.partial-{os.getpid()}{out_path.suffix}")
    try:
        write_audio(tmp, out, rate, subtype=subtype)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    seconds = len(audio) / rate
    return {"seconds": seconds, "cpu_seconds": None,
            "real_time_factor": (time.perf_counter() - start) / seconds}


__all__ = ["denoise_file", "scan_audio"]
