"""What a whole file costs through the command line against the model's invokes alone.

    python -m benchmarks.offline_cost runtime/models/cr_ced_int8.tflite [--seconds 60] [--repeats 2]

For each model: a noisy example of ``--seconds`` at the model's rate (runtime.example_audio)
is denoised by ``python -m runtime.denoise`` in a child process, and that process's CPU time
(Python's start, imports, reading, denoising and writing) is set against the CPU time of
the same model's ``invoke`` alone, in this process, for as many frames as the file makes.
The ratio is the price of everything around the model when a user cleans a file; issue
#24 asks at most 1.5x for CR-CED int8 on a 60 s file. Timings move by about 30 % on a
shared VM: compare within one run, and read the spread of ``--repeats``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from runtime.audio_io import write_audio
from runtime.dsp import frame_count
from runtime.errors import DenoiseError
from runtime.example_audio import noisy_example
from runtime.model_file import TfliteDenoiserModel, read_spec


def cli_cpu_seconds(model: Path, audio: Path, out: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one ``python -m runtime.denoise`` of ``audio``."""
    command = [sys.executable, "-m", "runtime.denoise", str(audio), "-o", str(out), "--model", str(model),
               "--no-progress"]
    t0 = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    err = child.stderr.read().decode(errors="replace").strip()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise DenoiseError(f"runtime.denoise failed on {audio}: {err.splitlines()[-1] if err else status}")
    return usage.ru_utime + usage.ru_stime, wall


def invoke_cpu_seconds(model: Path, frames: int, seed: int = 0) -> float:
    """CPU seconds of ``frames`` invokes of ``model`` (one thread), on feature-like input."""
    m = TfliteDenoiserModel(model, num_threads=1)
    x = np.random.default_rng(seed).standard_normal(m.input_shape).astype(np.float32)
    for _ in range(50):  # warm-up: first invokes allocate and pack weights
        m.set_input(x)
        m.invoke()
    m.set_input(x)
    t0 = time.process_time()
    for _ in range(frames):
        m.invoke()
    return time.process_time() - t0


def measure(model: Path, seconds: float, repeats: int, folder: Path) -> dict:
    spec = read_spec(model)
    noisy, _ = noisy_example(spec.sample_rate, seconds)
    audio = folder / f"x{int(seconds)}s_{spec.sample_rate}.wav"
    write_audio(audio, noisy, spec.sample_rate)
    frames = frame_count(len(noisy), spec)
    runs = []
    for _ in range(repeats):
        cpu, wall = cli_cpu_seconds(model, audio, folder / "y.wav")
        runs.append({"cli_cpu_s": cpu, "cli_wall_s": wall, "invoke_cpu_s": invoke_cpu_seconds(model, frames)})
    for r in runs:
        r["ratio"] = r["cli_cpu_s"] / r["invoke_cpu_s"]
    return {"model": model.name, "seconds": seconds, "frames": frames, "runs": runs}


def table(results: list[dict]) -> str:
    lines = ["| model | audio | frames | run | CLI CPU (s) | CLI wall (s) | invokes alone, CPU (s) | CLI / invokes |",
             "|---|---|---|---|---|---|---|---|"]
    for res in results:
        for i, r in enumerate(res["runs"], 1):
            lines.append(f"| {res['model']} | {res['seconds']:g} s | {res['frames']} | {i} | {r['cli_cpu_s']:.2f} "
                         f"| {r['cli_wall_s']:.2f} | {r['invoke_cpu_s']:.2f} | {r['ratio']:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.offline_cost",
                                description="CPU time of `python -m runtime.denoise` on a whole file against "
                                            "the model's invokes alone for the same frames.")
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files exported by export.to_tflite")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the example file (default 60)")
    p.add_argument("--repeats", type=int, default=2, help="runs per model (default 2)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the results here")
    args = p.parse_args(argv)
    try:
        if args.seconds <= 0 or args.repeats < 1:
            raise DenoiseError("--seconds must be above 0 and --repeats at least 1")
        paths = [Path(m) for m in args.models]
        for path in paths:
            if not path.is_file():
                raise DenoiseError(f"{path}: no such model file")
        with tempfile.TemporaryDirectory() as tmp:
            results = [measure(path, args.seconds, args.repeats, Path(tmp)) for path in paths]
    except DenoiseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
