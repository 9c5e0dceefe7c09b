"""Latency per frame, real-time factor, parameters and MACs of denoiser .tflite models.

    python -m benchmarks.latency runtime/models/*.tflite --threads 1,2 --json results.json

Needs only the [runtime] extra, so it runs unchanged on an ARM Linux board. DTLN from
../shared/peers/dtln is measured in the same run when present (or with --peer-dir),
and every model is also reported per second of audio so different hops compare fairly.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from runtime.errors import DenoiseError
from runtime.example_audio import noisy_example
from runtime.model_file import count_constant_elements, make_interpreter
from runtime.stream import DEFAULT_POSTFILTER, POSTFILTERS, StreamDenoiser

DEFAULT_PEER_DIR = Path(__file__).resolve().parents[2] / "shared" / "peers" / "dtln"


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
                  postfilter: str = DEFAULT_POSTFILTER, label: str | None = None) -> dict:
    """Invoke time and whole-frame (DSP, post-filter and model) time per frame through
    StreamDenoiser."""
    sd = StreamDenoiser(path, num_threads=threads, postfilter=postfilter)
    spec = sd.spec
    noisy, _ = noisy_example(spec.sample_rate, max(seconds, 1.0))
    hop = spec.hop
    frames = [noisy[i:i + hop] for i in range(0, len(noisy) - hop + 1, hop)]
    model, dsp = sd.model, sd.dsp
    for f in frames[:warmup]:
        sd.process_frame(f)
    invoke_us, frame_us = [], []
    clock = time.perf_counter_ns
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
    data = path.read_bytes()
    info = spec.info or {}
    frames_per_s = spec.sample_rate / hop
    inv, whole = percentiles(invoke_us), percentiles(frame_us)
    return {
        "model": label or path.name, "postfilter": postfilter, "kind": spec.model_kind, "threads": threads, "backend": sd.backend,
        "sample_rate": spec.sample_rate, "hop": hop, "bytes": len(data),
        "parameters": int(info.get("parameters") or count_constant_elements(data)),
        "macs_per_frame": info.get("macs_per_frame"),
        "macs_per_second": (info["macs_per_frame"] * frames_per_s) if info.get("macs_per_frame") else None,
        "invoke_us": inv, "frame_us": whole,
        "dsp_overhead_us": float(np.median(np.subtract(frame_us, invoke_us))),
        "dsp_overhead_vs_invoke": float(np.median(np.subtract(frame_us, invoke_us)) / inv["median"]),
        "ms_per_audio_second": whole["median"] * frames_per_s / 1e3,
        "real_time_factor": whole["median"] * 1e-6 / (hop / spec.sample_rate),
    }


def measure_dtln(peer_dir: Path, threads: int, seconds: float, quant: bool, warmup: int = 100) -> dict:
    """DTLN's two models per 8 ms block (16 kHz, 512/128), with its own rfft/irfft."""
    prefix = "model_quant_" if quant else "model_"
    interps = [make_interpreter(peer_dir / f"{prefix}{i}.tflite", threads)[0] for i in (1, 2)]
    details = [(it.get_input_details(), it.get_output_details()) for it in interps]
    rate, block, shift = 16000, 512, 128
    noisy, _ = noisy_example(rate, max(seconds, 1.0))
    states = [np.zeros(d[0][1]["shape"] if len(d[0]) > 1 else 0, np.float32) for d in details]
    buf = np.zeros(block, np.float32)
    invoke_us, frame_us = [], []
    n_blocks = (len(noisy) - shift) // shift
    clock = time.perf_counter_ns

    def step(i, audio_in):
        """One DTLN model: (audio-ish, state) in, (audio-ish output, invoke ns) out; the
        tensors are told apart by rank (the state is 4-D)."""
        ins, outs = details[i]
        a_in, s_in = sorted(ins, key=lambda x: len(x["shape"]) == 4)
        interps[i].set_tensor(a_in["index"], audio_in)
        interps[i].set_tensor(s_in["index"], states[i])
        t = clock()
        interps[i].invoke()
        spent = clock() - t
        out = next(interps[i].get_tensor(o["index"]) for o in outs if len(o["shape"]) == 3)
        states[i] = next(interps[i].get_tensor(o["index"]) for o in outs if len(o["shape"]) == 4)
        return out, spent

    for b in range(n_blocks):
        t0 = clock()
        buf[:-shift] = buf[shift:]
        buf[-shift:] = noisy[b * shift:(b + 1) * shift]
        spec_c = np.fft.rfft(buf)
        mag = np.abs(spec_c).astype(np.float32).reshape(1, 1, -1)
        mask, spent1 = step(0, mag)
        est = np.fft.irfft(spec_c * mask.reshape(-1)).astype(np.float32).reshape(1, 1, -1)
        _, spent2 = step(1, est)
        spent = spent1 + spent2
        t3 = clock()
        if b >= warmup:
            invoke_us.append(spent / 1e3)
            frame_us.append((t3 - t0) / 1e3)
    params = sum(count_constant_elements((peer_dir / f"{prefix}{i}.tflite").read_bytes()) for i in (1, 2))
    size = sum((peer_dir / f"{prefix}{i}.tflite").stat().st_size for i in (1, 2))
    inv, whole = percentiles(invoke_us), percentiles(frame_us)
    frames_per_s = rate / shift
    return {"model": f"DTLN ({'dynamic int8' if quant else 'float32'})", "kind": "dtln", "threads": threads,
            "backend": "ai_edge_litert", "sample_rate": rate, "hop": shift, "bytes": size,
            "parameters": params, "macs_per_frame": None, "macs_per_second": None,
            "invoke_us": inv, "frame_us": whole,
            "dsp_overhead_us": float(np.median(np.subtract(frame_us, invoke_us))),
            "dsp_overhead_vs_invoke": float(np.median(np.subtract(frame_us, invoke_us)) / inv["median"]),
            "ms_per_audio_second": whole["median"] * frames_per_s / 1e3,
            "real_time_factor": whole["median"] * 1e-6 / (shift / rate)}


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency",
                                description="Per-frame latency (invoke and whole StreamDenoiser frame), "
                                            "real-time factor, parameters and MACs of .tflite models.")
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files exported by export.to_tflite")
    p.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio per measurement (default 10)")
    p.add_argument("--json", default=None, help="write all results here")
    p.add_argument("--peer-dir", default=str(DEFAULT_PEER_DIR),
                   help="DTLN peer folder (default ../shared/peers/dtln; skipped if absent)")
    p.add_argument("--no-peer", action="store_true", help="do not measure DTLN")
    p.add_argument("--postfilter", choices=[*POSTFILTERS, "both"], default=DEFAULT_POSTFILTER,
                   help=f"the runtime post-filter in the frame (default {DEFAULT_POSTFILTER}, as "
                        "runtime.denoise); 'both' times each model with and without it")
    args = p.parse_args(argv)
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        print(f"error: --threads must be comma-separated integers, got {args.threads!r}", file=sys.stderr)
        return 2
    rows = []
    try:
        for model in args.models:
            for t in threads:
                for pf in (POSTFILTERS if args.postfilter == "both" else (args.postfilter,)):
                    label = Path(model).name + (" (no post-filter)" if args.postfilter == "both"
                                                and pf == "none" else "")
                    rows.append(measure_model(Path(model), t, args.seconds, postfilter=pf, label=label))
        peer = Path(args.peer_dir)
        if not args.no_peer and (peer / "model_1.tflite").exists():
            for t in threads:
                for quant in (False, True):
                    if (peer / f"model_{'quant_' if quant else ''}1.tflite").exists():
                        rows.append(measure_dtln(peer, t, args.seconds, quant))
        elif not args.no_peer:
            print(f"note: DTLN peer not found in {peer}; measuring ours only", file=sys.stderr)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"CPU: {cpu_description()} ({platform.machine()}), Python {platform.python_version()}, "
          f"{args.seconds:g} s of audio per row, after warm-up")
    print(markdown(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"cpu": cpu_description(), "machine": platform.machine(),
                                               "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
