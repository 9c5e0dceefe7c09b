"""Parse TFLite benchmark_model output and turn it into per-frame latency for our models.

Used by run_on_device.sh (so the shell script stays a thin adb driver) and by its tests.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

from runtime.errors import DenoiseError
from runtime.model_file import read_spec

_TIMINGS = re.compile(r"Inference timings in us:.*?Inference \(avg\):\s*([0-9.eE+]+)")
_INIT = re.compile(r"Inference timings in us:\s*Init:\s*([0-9.eE+]+)")
_MEMORY = re.compile(r"Memory footprint delta from the start of the tool \(MB\):\s*init=([0-9.]+)\s+overall=([0-9.]+)")
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring:\s*([0-9.]+)")


def parse_benchmark_output(text: str) -> dict:
    """{'avg_us', 'init_us', 'mem_init_mb', 'mem_overall_mb', 'peak_mb'}; DenoiseError if no timings."""
    m = _TIMINGS.search(text)
    if not m:
        raise DenoiseError("benchmark_model printed no 'Inference timings in us: ... Inference (avg)' line")
    out = {"avg_us": float(m.group(1))}
    if (m := _INIT.search(text)):
        out["init_us"] = float(m.group(1))
    if (m := _MEMORY.search(text)):
        out["mem_init_mb"], out["mem_overall_mb"] = float(m.group(1)), float(m.group(2))
    if (m := _PEAK.search(text)):
        out["peak_mb"] = float(m.group(1))
    return out


def model_row(model: Path, log_text: str, device: dict, threads: int, delegate: str) -> dict:
    spec = read_spec(model)
    timing = parse_benchmark_output(log_text)
    frame_s = spec.hop / spec.sample_rate
    return {**device, "model": model.name, "kind": spec.model_kind, "threads": threads,
            "delegate": delegate, "sample_rate": spec.sample_rate, "hop": spec.hop,
            "parameters": (spec.info or {}).get("parameters"), "bytes": model.stat().st_size,
            **timing, "latency_per_frame_us": timing["avg_us"],
            "real_time_factor": timing["avg_us"] * 1e-6 / frame_s}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.device_report",
                                description="Turn benchmark_model logs into per-frame latency rows (CSV + JSON).")
    p.add_argument("--device-json", required=True, help="device facts (model, abi, soc, android)")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--delegate", default="cpu")
    p.add_argument("-o", "--out", required=True, help="output path without extension")
    p.add_argument("pairs", nargs="+", metavar="MODEL=LOG", help="model file and its benchmark log")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    device = json.loads(Path(args.device_json).read_text())
    rows, failed = [], []
    for pair in args.pairs:
        model, _, log = pair.partition("=")
        try:
            rows.append(model_row(Path(model), Path(log).read_text(errors="replace"), device,
                                  args.threads, args.delegate))
        except (DenoiseError, OSError) as exc:
            failed.append(f"{Path(model).name}: {exc}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if rows:
        with open(out.with_suffix(".csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
        for r in rows:
            print(f"{r['model']}: {r['latency_per_frame_us']:.1f} us per {1000 * r['hop'] / r['sample_rate']:.0f} ms "
                  f"frame, real-time factor {r['real_time_factor']:.4f} ({1 / r['real_time_factor']:.0f}x real time)")
    for msg in failed:
        print(f"error: {msg}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
