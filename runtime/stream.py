"""StreamDenoiser: any-size chunks in, final denoised samples out, fixed latency."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio_io import check_signal
from .dsp import FrameProcessor, postfilter_wiener
from .errors import AudioError, ModelError
from .spec import POSTFILTER_KINDS, RUN_TIME_DEFAULTS

MODELS_DIR = Path(__file__).parent / "models"
#: For min_gain_db and postfilter: the setting the model's spec carries (spec.run_time,
#: written by export.to_tflite; RUN_TIME_DEFAULTS for files exported before it existed).
FROM_MODEL = "model"
#: What a model without its own settings gets.
DEFAULT_MIN_GAIN_DB = RUN_TIME_DEFAULTS["min_gain_db"]
#: "wiener": the model's mask is multiplied by a classical Wiener gain (runtime.dsp.WienerGain)
#: that tracks slowly varying noise; "none": the model alone.
POSTFILTERS = POSTFILTER_KINDS
DEFAULT_POSTFILTER = RUN_TIME_DEFAULTS["postfilter"]
#: Bundled models by the rate they run at, each list in order of preference: the int8
#: CRNN scored as well as its float version on held-out speakers and noises and on
#: VoiceBank-DEMAND, and is the file that ships to devices (runtime/models/MODEL_CARD.md).
BUNDLED_MODELS = {
    8000: ("crnn_int8.tflite", "crnn_float32.tflite", "cr_ced_int8.tflite"),
    16000: ("crnn16k_int8.tflite", "crnn16k_float32.tflite", "cr_ced16k_int8.tflite"),
}
DEFAULT_MODELS = BUNDLED_MODELS[8000]


def default_model_path(sample_rate: int | None = None) -> Path:
    """The bundled model for input at ``sample_rate``: the 16 kHz model for 16 kHz and
    above, the 8 kHz model below and when the rate is not given; the other rate's model
    when none of the preferred rate is installed."""
    rates = (16000, 8000) if sample_rate is not None and sample_rate >= 16000 else (8000, 16000)
    for rate in rates:
        for name in BUNDLED_MODELS[rate]:
            if (MODELS_DIR / name).is_file():
                return MODELS_DIR / name
    raise ModelError(f"no bundled model in {MODELS_DIR}; pass a .tflite exported with "
                     f"python -m export.to_tflite")


def load_model(model=None, num_threads: int = 1, sample_rate: int | None = None):
    """A model object from a path, an already built model, or None (the bundled model for
    ``sample_rate``)."""
    from .model_file import TfliteDenoiserModel

    if model is None:
        model = default_model_path(sample_rate)
    if isinstance(model, (str, Path)):
        return TfliteDenoiserModel(model, num_threads=num_threads)
    return model


class StreamDenoiser:
    """Frame-by-frame denoising with the model's own spec.

    process(chunk) accepts mono float32/float64/int16 chunks of any length and returns
    the samples that became final; flush() returns the rest and starts a new stream.
    The concatenated output is the denoised input delayed by ``latency_samples``
    (n_fft - hop, 192 samples or 24 ms on the 8 kHz grid, and a hop more for a model whose
    spec looks a frame ahead, as the bundled CRNNs do: 32 ms) and has length
    len(input) + latency_samples.

    min_gain_db and postfilter default to the model's own settings (FROM_MODEL: its spec's
    run_time: -40 dB and "wiener" for the bundled models, -20 dB and "wiener" for any file
    exported without them); a number or None, and "wiener" or "none", override them.
    min_gain_db caps the attenuation, which keeps the models from carving into speech they
    are unsure of (runtime/models/MODEL_CARD.md has the limits measured); None removes it.
    postfilter="wiener" (the default) multiplies the model's gain, bin by bin, by the
    square root of the gain of a classical Wiener filter over minimum-statistics noise:
    the models leave slowly varying noise (hoods, fans, hum) in that a minimum tracker
    removes, and the post-filter raised both models' PESQ gain on held-out noises and on
    VoiceBank-DEMAND (see runtime/models/MODEL_CARD.md); "none" or None gives the model
    alone.
    sample_rate, when given, picks the bundled model when none is named (the 16 kHz one
    for 16 kHz, the 8 kHz one for 8 kHz) and is checked against the model's: a stream is
    not resampled (runtime.denoise and runtime.denoise_file resample whole files).
    compiled: the frame path's arithmetic as numba kernels (runtime.dsp_kernels); by default
    whenever numba is installed, False for numpy alone.
    """

    def __init__(self, model_path=None, num_threads: int = 1, *, min_gain_db: float | str | None = FROM_MODEL,
                 postfilter: str | None = FROM_MODEL, sample_rate: int | None = None,
                 compiled: bool | None = None):
        self.model = load_model(model_path, num_threads, sample_rate)
        self.spec = self.model.spec
        if sample_rate is not None and int(sample_rate) != self.spec.sample_rate:
            raise AudioError(f"audio is {sample_rate} Hz but the model expects "
                             f"{self.spec.sample_rate} Hz; resample first (runtime.denoise and "
                             f"runtime.denoise_file do)")
        if min_gain_db == FROM_MODEL:
            min_gain_db = self.spec.setting("min_gain_db")
        if postfilter == FROM_MODEL:
            postfilter = self.spec.setting("postfilter")
        self.min_gain_db = min_gain_db
        min_gain = 0.0 if min_gain_db is None else 10 ** (min_gain_db / 20)
        postfilter = postfilter or "none"
        if postfilter not in POSTFILTERS:
            raise ModelError(f"postfilter must be one of {POSTFILTERS}, got {postfilter!r}")
        self.postfilter = postfilter
        wiener = postfilter_wiener(self.spec, compiled) if postfilter == "wiener" else None
        self.dsp = FrameProcessor(self.spec, min_gain=min_gain, postfilter=wiener, compiled=compiled)
        # the model input is a view of the DSP's context buffer, shaped once
        self.model_input = self.dsp.context.reshape(self.model.input_shape)
        # a TFLite model as loaded (a wrapper set in its place later, e.g. a recorder, is called)
        self._tflite = self.model if hasattr(self.model, "frame") and hasattr(self.model, "run_block") else None
        self._hop = self.spec.hop
        self._pending = np.zeros(self._hop)
        self._masks = np.zeros((self.dsp.BLOCK, self.spec.n_bins), np.float32)
        self._fill = 0
        self._samples_in = 0
        self._samples_out = 0

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def latency_samples(self) -> int:
        return self.spec.latency_samples

    @property
    def backend(self) -> str:
        return getattr(self.model, "backend", "none")

    def reset(self) -> None:
        """Forget all history: buffers, context, recurrent state."""
        self.dsp.reset()
        self.model.reset()
        self._pending.fill(0)
        self._fill = 0
        self._samples_in = 0
        self._samples_out = 0

    def process_frame(self, hop_samples: np.ndarray) -> np.ndarray:
        """Exactly ``hop`` samples in, ``hop`` final samples out (a reused buffer)."""
        self.dsp.analyze(hop_samples)
        model = self.model
        if model is self._tflite:  # the interpreter's own shape: the compiled synthesis takes it as is
            return self.dsp.synthesize(model.frame(self.model_input))
        return self.dsp.synthesize(model(self.model_input))

    def process(self, chunk) -> np.ndarray:
        """Denoise a chunk of any length; the samples that became final. The frames a chunk
        completes are processed in blocks (batched FFTs, features, post-filter and overlap-
        add; one model call a frame), with the same output as frame by frame."""
        x = check_signal(chunk, "chunk")
        hop = self._hop
        n_frames = (self._fill + len(x)) // hop
        out = np.empty(n_frames * hop)
        pos, done = 0, 0
        # models with run_block (the TFLite ones) take whole blocks; others go frame by frame,
        # and so do the last frames of a chunk when they are too few to repay a block
        block = self.dsp.BLOCK if hasattr(self.model, "run_block") else 1
        while done < n_frames:
            k = min(block, n_frames - done)
            if k < self.dsp.min_block:
                k = 1
            head = self._pending[:self._fill]
            take = k * hop - self._fill
            if k == 1:
                self._pending[self._fill:] = x[pos:pos + take]
                out[done * hop:(done + 1) * hop] = self.process_frame(self._pending)
            else:
                self.dsp.analyze_block(head, x[pos:pos + take])
                masks = self.model.run_block(self.dsp.block_features, self._masks[:k])
                self.dsp.synthesize_block(masks, out[done * hop:(done + k) * hop])
            pos += take
            self._fill = 0
            done += k
        rest = len(x) - pos
        self._pending[self._fill:self._fill + rest] = x[pos:]
        self._fill += rest
        self._samples_in += len(x)
        self._samples_out += len(out)
        return out

    def flush(self) -> np.ndarray:
        """The remaining output (so the total is len(input) + latency), then reset()."""
        total = self._samples_in + self.latency_samples
        need = total - self._samples_out
        parts = []
        while need > 0:
            zeros = np.zeros(self._hop - self._fill)
            block = self.process(zeros)
            parts.append(block[:need])
            need -= len(block)
        self.reset()
        return np.concatenate(parts) if parts else np.zeros(0)
