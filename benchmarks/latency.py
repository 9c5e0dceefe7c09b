"""Latency per frame, real-time factor, parameters and MACs of denoiser .tflite models.

    python -m benchmarks.latency runtime/models/*.tflite --threads 1,2 --json results.json

Needs only the [runtime] extra, so it runs unchanged on an ARM Linux board. The field's
denoisers (benchmarks.peers: DTLN float and int8, RNNoise, GTCRN, DeepFilterNet3; --peers)
are timed in the same run, alternated with our models over --rounds rounds, and every
system is reported as CPU milliseconds per second of audio (so different hops and rates
compare fairly) and as a ratio to DTLN-quant's.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from runtime.dsp import kernels_available
from runtime.errors import DenoiseError
from runtime.example_audio import noisy_example
from runtime.model_file import count_constant_elements
from runtime.stream import FROM_MODEL, POSTFILTERS, StreamDenoiser

from .peers import DEFAULT_PEER_ROOT, load_peers, parse_peers

REFERENCE_PEER = "dtln-quant"


def cpu_description() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentiles(samples_us) -> dict:
    a = np.asarray(samples_us)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99))}


def measure_model(path: Path, threads: int, seconds: float, warmup: int = 200,
                  postfilter: str = FROM_MODEL, label: str | None = None, compiled: bool | None = None) -> dict:
    """Invoke time and whole-frame (DSP, post-filter and model) time per frame through
    StreamDenoiser, on the frame path ``compiled`` picks (default: compiled when numba is
    installed)."""
    sd = StreamDenoiser(path, num_threads=threads, postfilter=postfilter, compiled=compiled)
    spec = sd.spec
    noisy, _ = noisy_example(spec.sample_rate, max(seconds, 1.0))
    hop = spec.hop
    frames = [noisy[i:i + hop] for i in range(0, len(noisy) - hop + 1, hop)]
    model, dsp = sd.model, sd.dsp
    for f in frames[:warmup]:
        sd.process_frame(f)
    invoke_us, frame_us = [], []
    clock = time.perf_counter_ns
    cpu0 = time.process_time()
    for f in frames:
        # the same steps as StreamDenoiser.process_frame, with the invoke timed apart
        t0 = clock()
        dsp.analyze(f)
        model.set_input(sd.model_input)
        t1 = clock()
        model.invoke()
        t2 = clock()
        dsp.synthesize(model.read_output())
        t3 = clock()
        invoke_us.append((t2 - t1) / 1e3)
        frame_us.append((t3 - t0) / 1e3)
    cpu_seconds = time.process_time() - cpu0
    data = path.read_bytes()
    info = spec.info or {}
    frames_per_s = spec.sample_rate / hop
    inv, whole = percentiles(invoke_us), percentiles(frame_us)
    return {
        "model": label or path.name, "postfilter": sd.postfilter,
        "frame_path": "compiled" if sd.dsp.compiled else "numpy", "kind": spec.model_kind, "threads": threads, "backend": sd.backend,
        "sample_rate": spec.sample_rate, "hop": hop, "bytes": len(data),
        "parameters": int(info.get("parameters") or count_constant_elements(data)),
        "macs_per_frame": info.get("macs_per_frame"),
        "macs_per_second": (info["macs_per_frame"] * frames_per_s) if info.get("macs_per_frame") else None,
        "invoke_us": inv, "frame_us": whole,
        "dsp_overhead_us": float(np.median(np.subtract(frame_us, invoke_us))),
        "dsp_overhead_vs_invoke": float(np.median(np.subtract(frame_us, invoke_us)) / inv["median"]),
        "ms_per_audio_second": whole["median"] * frames_per_s / 1e3,
        "cpu_ms_per_audio_second": 1e3 * cpu_seconds / (len(frames) * hop / spec.sample_rate),
        "real_time_factor": whole["median"] * 1e-6 / (hop / spec.sample_rate),
    }


def measure_peer(peer, seconds: float) -> dict:
    """CPU time per second of audio of a benchmarks.peers runner on the example signal at
    the peer's own rate (so no resampling is timed), one thread, after a 1 s warm-up."""
    noisy, _ = noisy_example(peer.rate, max(seconds, 1.0))
    peer.run(noisy[:peer.rate], peer.rate)
    result = peer.run(noisy, peer.rate)
    return {"model": peer.label, "kind": "peer", "peer": peer.name, "threads": 1,
            "sample_rate": peer.rate, "hop": peer.hop,
            "cpu_ms_per_audio_second": result.cpu_ms_per_second,
            "real_time_factor": result.cpu_ms_per_second / 1e3}


def markdown(rows) -> str:
    head = ("| model | threads | params | MACs/s of audio | KB | hop (ms) | invoke median / p90 / p99 (us) "
            "| frame median / p99 (us) | DSP overhead | ms per s of audio | RTF | x real time |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        macs = f"{r['macs_per_second'] / 1e6:.0f} M" if r["macs_per_second"] else "n/a"
        i, f = r["invoke_us"], r["frame_us"]
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['parameters']:,} | {macs} | {r['bytes'] / 1024:.1f} "
            f"| {1000 * r['hop'] / r['sample_rate']:.0f} | {i['median']:.0f} / {i['p90']:.0f} / {i['p99']:.0f} "
            f"| {f['median']:.0f} / {f['p99']:.0f} | {100 * r['dsp_overhead_vs_invoke']:.0f}% "
            f"| {r['ms_per_audio_second']:.1f} | {r['real_time_factor']:.4f} | {1 / r['real_time_factor']:.0f}x |")
    return "\n".join(lines)


def compute_markdown(rows) -> str:
    """Every system's CPU per second of audio, and its ratio to DTLN-quant's in this run."""
    ref = next((r["cpu_ms_per_audio_second"] for r in rows if r.get("peer") == REFERENCE_PEER), None)
    lines = ["| system | threads | rate (Hz) | hop (ms) | CPU ms per s of audio | x real time | vs DTLN-quant |",
             "|" + "---|" * 7]
    for r in sorted(rows, key=lambda r: r["cpu_ms_per_audio_second"]):
        ms = r["cpu_ms_per_audio_second"]
        ratio = f"{ms / ref:.2f}x" if ref else "n/a"
        lines.append(f"| {r['model']} | {r['threads']} | {r['sample_rate']} | {1000 * r['hop'] / r['sample_rate']:.0f} "
                     f"| {ms:.1f} | {1000 / ms:.0f}x | {ratio} |")
    return "\n".join(lines)


def median_round(measurements: list[dict]) -> dict:
    """The round whose CPU per second of audio is the median of the rounds (odd count:
    the middle one), with every round's figure kept."""
    ordered = sorted(measurements, key=lambda r: r["cpu_ms_per_audio_second"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["cpu_ms_per_audio_second_rounds"] = [r["cpu_ms_per_audio_second"] for r in measurements]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency",
                                description="Per-frame latency (invoke and whole StreamDenoiser frame), "
                                            "real-time factor, parameters and MACs of .tflite models, "
                                            "and CPU per second of audio beside the field's denoisers.")
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files exported by export.to_tflite")
    p.add_argument("--threads", default="1", help="comma-separated thread counts for our models (default 1; "
                                                  "peers run on one thread)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio per measurement (default 10)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds over all systems, alternating ours and the peers; each system's "
                        "median round is reported (default 3)")
    p.add_argument("--json", default=None, help="write all results here")
    p.add_argument("--peers", default="all", metavar="LIST",
                   help="peers timed in the same run: all (default), none, or a comma-separated list "
                        "of dtln, dtln-quant, rnnoise, gtcrn, dfn3; missing ones are skipped with a note")
    p.add_argument("--peer-root", default=str(DEFAULT_PEER_ROOT), metavar="DIR",
                   help="folder with the peers' model files (dtln/, gtcrn/; default ../shared/peers)")
    p.add_argument("--no-peer", action="store_true", help="same as --peers none")
    p.add_argument("--path", choices=("compiled", "numpy", "both"), default=None,
                   help="the frame path of our models: compiled (numba kernels, runtime.dsp_kernels), "
                        "numpy, or both in the same run (default: compiled when numba is installed)")
    p.add_argument("--postfilter", choices=[*POSTFILTERS, FROM_MODEL, "both"], default=FROM_MODEL,
                   help="the runtime post-filter in the frame (default: each model's own, as "
                        "runtime.denoise); 'both' times each model with and without it")
    args = p.parse_args(argv)
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        print(f"error: --threads must be comma-separated integers, got {args.threads!r}", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("error: --rounds must be at least 1", file=sys.stderr)
        return 2
    try:
        peer_names = [] if args.no_peer else parse_peers(args.peers)
        for model in args.models:
            if not Path(model).is_file():
                raise DenoiseError(f"{model}: no such model file")
        peers = load_peers(peer_names, args.peer_root, note=lambda m: print(m, file=sys.stderr))
        if args.path in ("compiled", "both") and not kernels_available():
            raise DenoiseError('--path compiled needs numba: pip install -e ".[fast]"')
        paths = {"both": (True, False), "compiled": (True,), "numpy": (False,), None: (None,)}[args.path]
        jobs = []  # (key, thunk): ours and the peers interleaved in every round
        for model in args.models:
            for t in threads:
                for pf in (POSTFILTERS if args.postfilter == "both" else (args.postfilter,)):
                    for compiled in paths:
                        label = Path(model).name + (" (no post-filter)" if args.postfilter == "both"
                                                    and pf == "none" else "")
                        label += {True: " (compiled)", False: " (numpy)"}[compiled] if args.path == "both" else ""
                        jobs.append((label, t, lambda m=model, t=t, pf=pf, label=label, c=compiled: measure_model(
                            Path(m), t, args.seconds, postfilter=pf, label=label, compiled=c)))
        ours = len(jobs)
        for i, peer in enumerate(peers):  # place each peer between our models
            jobs.insert(min(ours, i + 1) + i, (peer.label, 1, lambda peer=peer: measure_peer(peer, args.seconds)))
        measured: dict[tuple, list[dict]] = {}
        for _ in range(args.rounds):
            for label, t, thunk in jobs:
                measured.setdefault((label, t), []).append(thunk())
        rows = [median_round(m) for m in measured.values()]
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    frame_paths = sorted({r["frame_path"] for r in rows if "frame_path" in r})
    print(f"CPU: {cpu_description()} ({platform.machine()}), Python {platform.python_version()}, "
          f"{args.seconds:g} s of audio per measurement, {args.rounds} round(s), median round shown, "
          f"frame path: {' and '.join(frame_paths) or 'n/a'}")
    print(markdown([r for r in rows if r["kind"] != "peer"]))
    print()
    print(compute_markdown(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"cpu": cpu_description(), "machine": platform.machine(),
                                               "rounds": args.rounds, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
