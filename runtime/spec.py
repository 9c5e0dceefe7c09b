"""The feature spec every consumer of a model reads: one JSON object, embedded in the .tflite.

Training, export, the Python runtime and the Android port all derive framing, window,
normalisation and model I/O from this object, so none of them hard-codes 129, 8 or 64.
"""
from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from .errors import SpecError

#: Bump when a field changes meaning; readers refuse specs newer than they know.
#: 2: ``run_time`` (the settings the runtime applies by default) added.
#: 3: ``lookahead_frames`` added.
SPEC_VERSION = 3
#: The most frames a model may look ahead: each costs one hop of latency. One: a longer
#: delay line mixes quantization scales that the int8 converter refused (measured).
MAX_LOOKAHEAD_FRAMES = 1

MODEL_KINDS = ("cr-ced", "crnn", "identity")
OUTPUT_KINDS = ("mask", "magnitude")
WINDOWS = ("hamming", "hann")
POSTFILTER_KINDS = ("wiener", "none")

#: What the runtime applies around a model unless the caller says otherwise, and what a
#: spec without ``run_time`` (every file exported before version 2) gets:
#: min_gain_db: the attenuation limit (None: no limit);
#: postfilter: "wiener" multiplies the model's gain by a classical Wiener gain over
#: minimum-statistics noise (runtime.dsp.WienerGain), "none" plays the model alone;
#: postfilter_exponent: the power of that Wiener gain (0.5: its square root);
#: postfilter_floor_db: the Wiener gain's floor; postfilter_window_s: the span of its
#: minimum statistics; postfilter_sub_windows: the running minima that span is kept in.
RUN_TIME_DEFAULTS = {
    "min_gain_db": -20.0,
    "postfilter": "wiener",
    "postfilter_exponent": 0.5,
    "postfilter_floor_db": -20.0,
    "postfilter_window_s": 1.5,
    "postfilter_sub_windows": 8,
}


@dataclass
class FeatureSpec:
    """How audio becomes model input and model output becomes audio.

    sample_rate : Hz.  n_fft, win_length, hop : samples.
    context_frames : frames the model sees (current + past), 8 for CR-CED, 1 for the CRNN.
    feature_mean, feature_std : per-bin statistics of log(|X| + log_eps) measured on a
        training set; empty lists mean 0 and 1. Global constants keep the features causal.
    output_kind : "mask" (gain in [0, 1] on the noisy magnitude) or "magnitude".
    state_shapes : CRNN only, name -> shape of each recurrent state tensor; the model
        has inputs "<name>_in" and outputs "<name>_out" beside "frame" and "mask".
    lookahead_frames : frames the model hears after the one its output applies to: the
        mask it returns for frame t is applied to frame t - lookahead_frames, which adds
        that many hops of latency (0: causal frame by frame).
    info : facts about the model for reports (parameters, macs_per_frame, quant); no
        consumer depends on it for processing.
    run_time : the run-time settings the model was trained and tuned with (keys of
        RUN_TIME_DEFAULTS; missing keys take those defaults). Callers can override them.
    """

    sample_rate: int = 8000
    n_fft: int = 256
    win_length: int = 256
    hop: int = 64
    window: str = "hamming"
    context_frames: int = 8
    log_eps: float = 1e-4
    feature_mean: list = field(default_factory=list)
    feature_std: list = field(default_factory=list)
    output_kind: str = "mask"
    model_kind: str = "cr-ced"
    state_shapes: dict = field(default_factory=dict)
    lookahead_frames: int = 0
    info: dict = field(default_factory=dict)
    run_time: dict = field(default_factory=dict)
    version: int = SPEC_VERSION

    def __post_init__(self):
        self.feature_mean = _as_float16_list(self.feature_mean, "feature_mean")
        self.feature_std = _as_float16_list(self.feature_std, "feature_std")
        self.validate()

    def setting(self, name: str):
        """A run-time setting: the spec's own, else RUN_TIME_DEFAULTS'."""
        if name not in RUN_TIME_DEFAULTS:
            raise SpecError(f"unknown run-time setting {name!r}")
        return self.run_time.get(name, RUN_TIME_DEFAULTS[name])

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def analysis_delay_samples(self) -> int:
        """Zeros before the signal so that the first frame ends on its first hop: the STFT's
        own delay (runtime.dsp), without the model's lookahead."""
        return self.n_fft - self.hop

    @property
    def latency_samples(self) -> int:
        """Delay of the streamed output against the input, in samples: the STFT's delay plus
        one hop per frame of lookahead."""
        return self.analysis_delay_samples + self.lookahead_frames * self.hop

    def validate(self) -> None:
        if not isinstance(self.version, int) or self.version > SPEC_VERSION:
            raise SpecError(
                f"model spec version {self.version} is newer than this runtime understands "
                f"(<= {SPEC_VERSION}); upgrade the toolkit")
        if self.sample_rate <= 0 or self.hop <= 0 or self.n_fft <= 0:
            raise SpecError("sample_rate, n_fft and hop must be positive")
        if self.win_length != self.n_fft:
            raise SpecError("win_length must equal n_fft in this version")
        if self.n_fft % self.hop:
            raise SpecError(f"hop {self.hop} must divide n_fft {self.n_fft}")
        if self.window not in WINDOWS:
            raise SpecError(f"unknown window {self.window!r}; expected one of {WINDOWS}")
        if self.context_frames < 1:
            raise SpecError("context_frames must be >= 1")
        la = self.lookahead_frames
        if isinstance(la, bool) or not isinstance(la, int) or not 0 <= la <= MAX_LOOKAHEAD_FRAMES:
            raise SpecError(f"lookahead_frames must be an integer in [0, {MAX_LOOKAHEAD_FRAMES}], got {la!r}")
        if self.model_kind not in MODEL_KINDS:
            raise SpecError(f"unknown model_kind {self.model_kind!r}; expected one of {MODEL_KINDS}")
        if self.output_kind not in OUTPUT_KINDS:
            raise SpecError(f"unknown output_kind {self.output_kind!r}; expected one of {OUTPUT_KINDS}")
        for name in ("feature_mean", "feature_std"):
            values = getattr(self, name)
            if values and len(values) != self.n_bins:
                raise SpecError(f"{name} has {len(values)} values, expected {self.n_bins}")
        _check_run_time(self.run_time)

    def to_json(self) -> str:
        """Compact JSON; per-bin statistics as "f16:" + base64 of little-endian float16."""
        data = dataclasses.asdict(self)
        for name in ("feature_mean", "feature_std"):
            if data[name]:
                raw = np.asarray(data[name], "<f2").tobytes()
                data[name] = "f16:" + base64.b64encode(raw).decode()
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "FeatureSpec":
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError(f"model spec is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SpecError("model spec must be a JSON object")
        if isinstance(data.get("version"), int) and data["version"] > SPEC_VERSION:
            raise SpecError(
                f"model spec version {data['version']} is newer than this runtime understands "
                f"(<= {SPEC_VERSION}); upgrade the toolkit")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"model spec has unknown fields {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise SpecError(f"model spec is malformed: {exc}") from None

    def replace(self, **changes) -> "FeatureSpec":
        return dataclasses.replace(self, **changes)


def _check_run_time(settings) -> None:
    if not isinstance(settings, dict):
        raise SpecError("run_time must be a JSON object")
    unknown = sorted(set(settings) - set(RUN_TIME_DEFAULTS))
    if unknown:
        raise SpecError(f"run_time has unknown settings {unknown}")

    def number(name, lo, hi, integer=False):
        if name not in settings:
            return
        v = settings[name]
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not lo <= v <= hi:
            raise SpecError(f"run_time.{name} must be {'an integer' if integer else 'a number'} "
                            f"in [{lo}, {hi}], got {v!r}")

    if settings.get("min_gain_db", -20.0) is not None:
        number("min_gain_db", -100.0, 0.0)
    if settings.get("postfilter", "wiener") not in POSTFILTER_KINDS:
        raise SpecError(f"run_time.postfilter must be one of {POSTFILTER_KINDS}, "
                        f"got {settings['postfilter']!r}")
    number("postfilter_exponent", 0.0, 4.0)
    number("postfilter_floor_db", -60.0, 0.0)
    number("postfilter_window_s", 0.1, 10.0)
    number("postfilter_sub_windows", 1, 64, integer=True)


def _as_float16_list(values, name: str) -> list:
    """Statistics are stored as float16 (they must fit a 48 KB model); every consumer sees
    the same rounded values, training included."""
    if isinstance(values, str):
        if not values.startswith("f16:"):
            raise SpecError(f"{name}: expected a list or an 'f16:' base64 string")
        try:
            values = np.frombuffer(base64.b64decode(values[4:], validate=True), "<f2")
        except ValueError as exc:
            raise SpecError(f"{name}: bad base64 ({exc})") from None
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size and not np.all(np.isfinite(arr)):
        raise SpecError(f"{name}: contains NaN or Inf")
    return [float(v) for v in arr.astype("<f2")]


PRESETS = {
    # Park & Lee (2017): 8 kHz, 256-point periodic Hamming, hop 64 (8 ms), 8 frames.
    "paper8k": dict(sample_rate=8000, n_fft=256, win_length=256, hop=64, context_frames=8),
    # The seed project's operating point.
    "seed16k": dict(sample_rate=16000, n_fft=256, win_length=256, hop=64, context_frames=8),
    # Wide band: paper8k's time-frequency grid at twice the rate, 512 points (32 ms, the
    # same 31.25 Hz bins) and hop 128 (8 ms; 24 ms latency), so an 8 kHz model band-extends
    # exactly. Chosen by measurement (benchmarks/README.md): the 512-point grids leave a
    # mask 0.2-0.3 more oracle PESQ than 256 or 320 points, and on VoiceBank the 8 kHz CRNN
    # band-extended to 512/256 kept less STOI than the input after two epochs, where
    # 512/128 starts as the 8 kHz model itself.
    "wide16k": dict(sample_rate=16000, n_fft=512, win_length=512, hop=128, context_frames=8),
}


def preset(name: str, **overrides) -> FeatureSpec:
    """A FeatureSpec from a named preset, with optional field overrides."""
    if name not in PRESETS:
        raise SpecError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return FeatureSpec(**{**PRESETS[name], **overrides})
