"""Reading, checking, resampling and writing audio; every failure is an AudioError."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import AudioError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


def check_signal(audio: np.ndarray, name: str = "audio") -> np.ndarray:
    """Mono float64 copy of ``audio``; refuses empty, multi-channel and NaN/Inf input.

    int16 input is scaled to [-1, 1).
    """
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise AudioError(f"{name}: expected mono audio (1-D), got shape {a.shape}")
    if a.dtype == np.int16:
        a = a.astype(np.float64) / 32768.0
    elif a.dtype.kind in "iu":
        raise AudioError(f"{name}: integer audio must be int16, got {a.dtype}")
    else:
        a = a.astype(np.float64)
    if a.size and not np.all(np.isfinite(a)):
        raise AudioError(f"{name}: contains NaN or Inf samples")
    return a


def promised_frames(path: str | Path) -> int | None:
    """Sample frames a WAV header's data chunk promises (libsndfile silently reads what is
    there), or None for other formats and unparsable headers."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size)
                    block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                    if size % 2:
                        f.read(1)
                elif cid == b"data":
                    return size // block_align if block_align else None
                else:
                    f.seek(size + size % 2, 1)
    except OSError:
        return None


def warn_if_truncated(path: str | Path, frames_read: int) -> None:
    promised = promised_frames(path)
    if promised is not None and frames_read < promised and promised < 0xFFFFFFFF // 2:
        warnings.warn(f"{path}: truncated, the header promises {promised} samples but the file "
                      f"holds {frames_read}", stacklevel=3)


def read_audio(path: str | Path, *, mono: str = "error") -> tuple[np.ndarray, int]:
    """Read a file as float64 mono. ``mono``: "error" refuses stereo, "downmix" averages
    channels with a warning. Empty, corrupt and NaN/Inf files raise AudioError."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".mp3":
            import librosa  # optional, training extra: soundfile's mp3 support varies

            audio, rate = librosa.load(str(path), sr=None, mono=False)
            audio = audio.T
        else:
            import soundfile as sf

            audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except ImportError as exc:
        raise AudioError(f"{path}: reading this format needs {exc.name}") from None
    except Exception as exc:  # soundfile/audioread raise many types for corrupt files
        raise AudioError(f"{path}: cannot read audio ({type(exc).__name__}: {exc})") from None
    audio = np.asarray(audio)
    warn_if_truncated(path, len(audio))
    if audio.ndim == 2 and audio.shape[1] > 1:
        if mono == "downmix":
            warnings.warn(f"{path}: {audio.shape[1]} channels downmixed to mono", stacklevel=2)
            audio = audio.mean(axis=1)
        else:
            raise AudioError(f"{path}: has {audio.shape[1]} channels, expected mono")
    audio = audio.reshape(-1)
    if audio.size == 0:
        raise AudioError(f"{path}: contains no samples")
    return check_signal(audio, str(path)), int(rate)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """High-quality resampling with soxr; a no-op when the rates agree."""
    if rate_in == rate_out:
        return np.asarray(audio, dtype=np.float64)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float64), rate_in, rate_out, quality="HQ")


def write_audio(path: str | Path, audio: np.ndarray, rate: int, subtype: str | None = None) -> None:
    """Write mono audio; the format follows the extension (wav/flac/ogg)."""
    import soundfile as sf

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio, dtype=np.float64), int(rate), subtype=subtype)


def find_audio_files(folders) -> list[Path]:
    """All audio files under the folders, recursively, sorted for determinism."""
    found = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise AudioError(f"{folder}: not a directory")
        found.extend(p for p in folder.rglob("*")
                     if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    return sorted(found)
