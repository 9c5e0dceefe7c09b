"""tf.data input pipeline over a manifest directory, with an on-disk spectra cache.

Spectra come from `runtime.dsp` (the same code the runtime runs); the cache stores
magnitudes per pair so epochs after the first never touch audio, and nothing has to
fit in memory: tf.data streams one pair at a time through a shuffle buffer.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from runtime import dsp

from . import manifest
from .atomic_write import write_atomically
from runtime.audio_io import read_audio
from runtime.errors import DenoiseError
from runtime.spec import FeatureSpec


def read_manifest(data_dir, split: str | None = None) -> list[dict]:
    """Rows of DIR/manifest.csv (optionally one split) with absolute noisy/clean paths."""
    return manifest.read(data_dir, split)


def pair_spectra(row: dict, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(noisy X, clean S), complex (frames, bins), from the runtime's causal STFT."""
    noisy, rate = read_audio(row["noisy"])
    clean, rate_c = read_audio(row["clean"])
    if rate != spec.sample_rate or rate_c != spec.sample_rate:
        raise DenoiseError(f"{row['noisy']}: {rate} Hz, the spec needs {spec.sample_rate} Hz "
                           f"(re-run make_dataset with --sample-rate {spec.sample_rate})")
    return dsp.stft(noisy, spec), dsp.stft(clean, spec)


def pair_magnitudes(row: dict, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(noisy |X|, clean |S|), float32 (frames, bins)."""
    noisy, clean = pair_spectra(row, spec)
    return np.abs(noisy).astype(np.float32), np.abs(clean).astype(np.float32)


def phase_cosine(noisy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """cos(angle X - angle S) per bin, float32: with the magnitudes it gives Re(X conj S),
    all a phase-aware loss needs of the phases (0 where either spectrum is silent)."""
    product = noisy * np.conj(clean)
    size = np.abs(product)
    return np.divide(product.real, size, out=np.zeros(size.shape), where=size > 1e-20).astype(np.float32)


class SpectraCache:
    """Per-pair magnitude files under cache_dir, keyed by the STFT settings."""

    def __init__(self, spec: FeatureSpec, cache_dir):
        key = f"{spec.sample_rate}-{spec.n_fft}-{spec.hop}-{spec.window}"
        self.dir = Path(cache_dir) / hashlib.md5(key.encode()).hexdigest()[:10]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spec = spec
        settings = repr(dsp.postfilter_wiener(spec).settings)
        self._postfilter_key = hashlib.md5(settings.encode()).hexdigest()[:6]

    def _path(self, row: dict, suffix: str) -> Path:
        return self.dir / (hashlib.md5(row["noisy"].encode()).hexdigest()[:16] + suffix)

    def get(self, row: dict) -> tuple[np.ndarray, np.ndarray]:
        path = self._path(row, ".npz")
        if path.exists():
            with np.load(path) as z:
                return z["noisy"], z["clean"]
        noisy, clean = pair_magnitudes(row, self.spec)
        write_atomically(path, lambda tmp: np.savez(tmp, noisy=noisy, clean=clean))
        return noisy, clean

    def postfilter_gains(self, row: dict, noisy: np.ndarray) -> np.ndarray:
        """The runtime post-filter's gains (frames, bins) on this pair's noisy magnitude
        (``noisy``, from ``get``), cached beside it as float16 under a key of the filter's
        settings (they are computed frame by frame, ~10 ms a file)."""
        path = self._path(row, f".postfilter-{self._postfilter_key}.npy")
        if path.exists():
            return np.load(path).astype(np.float32)
        gains = dsp.postfilter_gains(noisy, self.spec).astype(np.float16)
        write_atomically(path, lambda tmp: np.save(tmp, gains))
        return gains.astype(np.float32)


    def phase_cosines(self, row: dict) -> np.ndarray:
        """``phase_cosine`` of this pair (frames, bins), cached beside its magnitudes as
        float16 (a cosine needs no more)."""
        path = self._path(row, ".phase-cos.npy")
        if path.exists():
            return np.load(path).astype(np.float32)
        cosines = phase_cosine(*pair_spectra(row, self.spec)).astype(np.float16)
        write_atomically(path, lambda tmp: np.save(tmp, cosines))
        return cosines.astype(np.float32)


def measure_normalisation(rows, spec: FeatureSpec, cache: SpectraCache,
                          max_pairs: int = 400) -> FeatureSpec:
    """Spec with per-bin mean/std of log(|X| + eps) over (up to max_pairs) noisy inputs."""
    total = np.zeros(spec.n_bins)
    total_sq = np.zeros(spec.n_bins)
    count = 0
    step = max(1, len(rows) // max_pairs)
    for row in rows[::step]:
        noisy, _ = cache.get(row)
        feat = dsp.log_magnitude(noisy, spec)
        total += feat.sum(axis=0)
        total_sq += (feat ** 2).sum(axis=0)
        count += len(feat)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 1e-8))
    return spec.replace(feature_mean=[round(float(v), 4) for v in mean],
                        feature_std=[round(float(v), 4) for v in std])


def count_frames(rows, cache: SpectraCache) -> int:
    return sum(len(cache.get(r)[0]) for r in rows)


def make_dataset(rows, spec: FeatureSpec, cache: SpectraCache, *, kind: str, batch_size: int,
                 shuffle: bool, seed: int = 0, seq_frames: int = 250, repeat: bool = False,
                 postfilter: bool = False, phase: bool = False):
    """A tf.data.Dataset of (features, target) batches.

    target is [clean |S|, noisy |X|] concatenated on the last axis (2*bins), so the loss
    can apply the predicted mask to the noisy magnitude; with ``postfilter`` the runtime
    post-filter's factors follow (3*bins), so the loss can apply them to the mask as the
    runtime does; with ``phase`` the cosine of each bin's phase difference comes last
    (``phase_cosine``), for the SI-SDR term.
    CR-CED: features (bins, context, 1), one frame per example.
    CRNN: features (seq_frames, bins), one sequence per example; with the spec's
    lookahead_frames the targets are that many frames later than the features (zeros,
    which cost nothing, in front).
    """
    import tensorflow as tf

    bins, ctx = spec.n_bins, spec.context_frames
    width = (2 + postfilter + phase) * bins
    order = np.arange(len(rows))

    def generate():
        rng = np.random.default_rng(seed)
        idx = rng.permutation(order) if shuffle else order
        for i in idx:
            noisy, clean = cache.get(rows[i])
            feats = dsp.features(noisy, spec)
            parts = [clean, noisy] + ([cache.postfilter_gains(rows[i], noisy)] if postfilter else [])
            if phase:
                parts.append(cache.phase_cosines(rows[i]))
            target = np.concatenate(parts, axis=1)
            if spec.lookahead_frames:  # the output at frame t is for frame t - lookahead
                target = np.concatenate([np.zeros((spec.lookahead_frames, width), np.float32),
                                         target[:-spec.lookahead_frames]])
            if kind == "cr-ced":
                yield dsp.context_windows(feats, ctx)[..., None], target
            else:
                for start in range(0, len(feats) - seq_frames + 1, seq_frames):
                    sl = slice(start, start + seq_frames)
                    yield feats[sl][None], target[sl][None]

    if kind == "cr-ced":
        sig = (tf.TensorSpec((None, bins, ctx, 1), tf.float32), tf.TensorSpec((None, width), tf.float32))
    else:
        sig = (tf.TensorSpec((None, seq_frames, bins), tf.float32),
               tf.TensorSpec((None, seq_frames, width), tf.float32))
    ds = tf.data.Dataset.from_generator(generate, output_signature=sig)
    if repeat:
        ds = ds.repeat()
    ds = ds.unbatch()
    if shuffle:
        ds = ds.shuffle(20000 if kind == "cr-ced" else 256, seed=seed)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
