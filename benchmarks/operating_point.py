"""Choose an STFT operating point by measurement: what a mask can reach, and what it costs.

    python -m benchmarks.operating_point --data DEV_DIR --rate 16000 --json op.json

For each candidate (window, hop) at the given rate, on the pairs of DEV_DIR:

* the oracle mask's quality: the noisy spectrum times min(|clean| / |noisy|, 1), with the
  noisy phase and the runtime's -20 dB gain floor, scored with PESQ, STOI and SI-SDR. A
  model that outputs a mask on that grid can at best reach this, so it ranks the grids by
  the ceiling they leave a model (frequency resolution against time resolution);
* the algorithmic latency (window - hop) and the frame rate;
* the CPU per second of audio of the runtime's frame path without a model (analysis,
  features, Wiener post-filter, synthesis: runtime.dsp.FrameProcessor), timed here;
* with TensorFlow present, the bundled CRNN size's multiply-accumulates per second on that grid.

Only mask-on-magnitude grids are compared: the models of this toolkit output such a mask.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from runtime.audio_io import read_audio, resample
from runtime.dsp import FrameProcessor, apply_output, istft, postfilter_wiener, stft
from runtime.errors import DenoiseError
from runtime.metrics import all_metrics
from runtime.spec import FeatureSpec

from .quality import load_pairs

#: (n_fft, hop) candidates per rate; all within the 32 ms latency budget
CANDIDATES = {
    16000: [(256, 64), (320, 80), (320, 160), (512, 128), (512, 256)],
    8000: [(128, 32), (160, 80), (256, 64), (256, 128)],
}
FLOOR_DB = -20.0


def candidate_spec(rate: int, n_fft: int, hop: int) -> FeatureSpec:
    return FeatureSpec(sample_rate=rate, n_fft=n_fft, win_length=n_fft, hop=hop,
                       context_frames=1, model_kind="crnn")


def oracle_scores(pairs: list[tuple[np.ndarray, np.ndarray]], spec: FeatureSpec) -> dict:
    """Mean PESQ/STOI/SI-SDR of the floored oracle magnitude mask on spec's grid."""
    floor = 10 ** (FLOOR_DB / 20)
    scores = []
    for noisy, clean in pairs:
        y, s = stft(noisy, spec), stft(clean, spec)
        mask = np.minimum(np.abs(s) / np.maximum(np.abs(y), 1e-12), 1.0)
        out = istft(apply_output(y, mask, spec, min_gain=floor), spec, len(noisy))
        scores.append(all_metrics(clean, out, spec.sample_rate))
    return {k: float(np.mean([m[k] for m in scores])) for k in scores[0]}


def frame_path_cpu(spec: FeatureSpec, seconds: float = 10.0, seed: int = 0) -> float:
    """CPU ms per second of audio of the frame path around a model (unit mask, post-filter on)."""
    rng = np.random.default_rng(seed)
    audio = 0.1 * rng.standard_normal(int(seconds * spec.sample_rate))
    proc = FrameProcessor(spec, min_gain=10 ** (FLOOR_DB / 20), postfilter=postfilter_wiener(spec))
    ones = np.ones(spec.n_bins, np.float32)
    hops = audio[: len(audio) // spec.hop * spec.hop].reshape(-1, spec.hop)
    start = time.process_time()
    for hop in hops:
        proc.analyze(hop)
        proc.synthesize(ones)
    return 1000.0 * (time.process_time() - start) / seconds


#: the size of the bundled 8 kHz CRNN (runtime/models/MODEL_CARD.md)
BUNDLED_CRNN_SIZE = dict(channels=(16, 16), proj=192, units=256)


def crnn_macs_per_second(spec: FeatureSpec, size: dict = BUNDLED_CRNN_SIZE) -> float | None:
    """A CRNN's MACs per second of audio on this grid; None without TensorFlow."""
    try:
        from training.models import crnn, macs_per_frame
    except ImportError:
        return None
    return macs_per_frame(crnn(spec, **size)) * spec.sample_rate / spec.hop


def measure(data_dir, rate: int, limit: int | None = None, candidates=None) -> list[dict]:
    pairs = []
    for pair in load_pairs(data_dir)[:limit]:
        noisy, r1 = read_audio(pair["noisy"])
        clean, r2 = read_audio(pair["clean"])
        pairs.append((resample(noisy, r1, rate), resample(clean, r2, rate)))
    if not pairs:
        raise DenoiseError(f"{data_dir}: no pairs")
    noisy_scores = {k: float(np.mean([all_metrics(c, n, rate)[k] for n, c in pairs]))
                    for k in ("pesq", "stoi", "si_sdr")}
    rows = []
    for n_fft, hop in candidates or CANDIDATES[rate]:
        spec = candidate_spec(rate, n_fft, hop)
        row = {"n_fft": n_fft, "hop": hop, "latency_ms": 1000 * spec.latency_samples / rate,
               "frames_per_s": rate / hop, "bins": spec.n_bins,
               **{f"oracle_{k}": v for k, v in oracle_scores(pairs, spec).items()},
               "frame_path_ms_per_s": frame_path_cpu(spec)}
        macs = crnn_macs_per_second(spec)
        if macs is not None:
            row["crnn_mmacs_per_s"] = macs / 1e6
        rows.append(row)
    return [{"noisy": noisy_scores, "pairs": len(pairs)}] + rows


def to_markdown(result: list[dict], rate: int) -> str:
    head, rows = result[0], result[1:]
    n = head["noisy"]
    cols = ["n_fft/hop", "latency ms", "frames/s", "bins", "oracle PESQ", "oracle STOI",
            "oracle SI-SDR", "frame path CPU ms/s"] + (["CRNN MMAC/s"] if "crnn_mmacs_per_s" in rows[0] else [])
    lines = [f"{head['pairs']} pairs at {rate} Hz; noisy PESQ {n['pesq']:.2f}, STOI {n['stoi']:.3f}, "
             f"SI-SDR {n['si_sdr']:.1f} dB", "", "| " + " | ".join(cols) + " |",
             "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{r['n_fft']}/{r['hop']}", f"{r['latency_ms']:.0f}", f"{r['frames_per_s']:.0f}",
                 str(r["bins"]), f"{r['oracle_pesq']:.2f}", f"{r['oracle_stoi']:.3f}",
                 f"{r['oracle_si_sdr']:.1f}", f"{r['frame_path_ms_per_s']:.1f}"]
        if "crnn_mmacs_per_s" in r:
            cells.append(f"{r['crnn_mmacs_per_s']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.operating_point", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dev pairs: a manifest dir or clean/ + noisy/")
    p.add_argument("--rate", type=int, default=16000, choices=sorted(CANDIDATES),
                   help="sample rate of the grids (default 16000)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N pairs")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    try:
        result = measure(args.data, args.rate, args.limit)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(to_markdown(result, args.rate))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
