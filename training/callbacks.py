"""Keras callbacks of training runs: per-epoch PESQ/STOI of what the runtime would output."""
from __future__ import annotations

import numpy as np


class QualityCallback:
    """Per-epoch PESQ/STOI on a few dev pairs, through the runtime's reconstruction, its
    attenuation limit and, for mask models, its default post-filter: the score is of what
    `runtime.denoise` outputs."""

    def __new__(cls, rows, spec, every, postfilter: bool = False):
        import tf_keras as keras

        from runtime.audio_io import read_audio
        from runtime.metrics import pesq_score, stoi_score
        from runtime.stream import DEFAULT_MIN_GAIN_DB

        from .enhance import enhance

        pairs = [(read_audio(r["noisy"])[0], read_audio(r["clean"])[0]) for r in rows]

        class _Quality(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if logs is None or every <= 0 or (epoch + 1) % every:
                    return
                scores = []
                for noisy, clean in pairs:
                    out = enhance(self.model, noisy, spec, postfilter=postfilter,
                                  min_gain_db=DEFAULT_MIN_GAIN_DB)
                    scores.append((pesq_score(clean, out, spec.sample_rate),
                                   stoi_score(clean, out, spec.sample_rate)))
                logs["val_pesq"], logs["val_stoi"] = map(float, np.nanmean(scores, axis=0))
                print(f" - val_pesq {logs['val_pesq']:.3f} - val_stoi {logs['val_stoi']:.3f}")

        return _Quality()
