"""Where one streaming frame's cost goes, stage by stage, for each model.

    python -m benchmarks.frame_stages runtime/models/*.tflite [--frames 400] [--json OUT]

Each stage runs alone over the same frames of the example signal, after a warm-up:

* ``frame``: ``StreamDenoiser.process_frame`` with the model's post-filter (as runtime.denoise);
* ``chunk_4``, ``chunk_64``: ``StreamDenoiser.process`` fed 4 or 64 hops at a time (32 or
  512 ms at an 8 ms hop: an audio callback, and a file), whose frames are processed as a
  block (batched FFTs, features, post-filter and overlap-add, one invoke a frame) when
  there are at least ``FrameProcessor.min_block`` of them, else frame by frame;
* ``frame_no_postfilter``: the same with ``postfilter="none"``;
* ``invoke``: the interpreter's invoke alone;
* ``analyze``: framing, window, FFT, features and context (``FrameProcessor.analyze``);
* ``model_io``: writing the input and states into the interpreter and reading the outputs,
  with int8 (de)quantisation;
* ``postfilter``: one update of the Wiener post-filter (``WienerGain.update``);
* ``synthesize``: mask, inverse FFT and overlap-add without the post-filter;
* ``block_analyze``, ``block_analyze_synthesize`` (analysis, then mask, inverse FFT and
  overlap-add without the post-filter), ``block_model`` (the invokes with their tensor
  copies) and ``block_postfilter``: the steps of ``process`` on blocks of 64 frames, per frame.

Each model is measured on both frame paths by default (``--path``): the compiled one
(runtime.dsp_kernels, when numba is installed) and numpy alone.

``outside_invoke`` is ``frame`` minus ``invoke`` (and ``outside_invoke_chunk_4`` and
``_64`` the same for the chunked stages): the work around the model. Natively the numbers are microseconds per frame (this
machine's timings move by about 30 % between runs: compare within one run). With
``--marks`` each stage is bracketed by a write to a descriptor that is never open, which the
QEMU plugin benchmarks/arm/insn_marks.c turns into instruction counts
(benchmarks.arm_emulation); no time is measured then.

Needs only the [runtime] extra.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from runtime.dsp import compiled_kernels, kernels_available
from runtime.errors import DenoiseError
from runtime.example_audio import noisy_example
from runtime.stream import StreamDenoiser

#: The stages in the order they run (and their marks come).
STAGES = ("frame", "chunk_4", "chunk_64", "frame_no_postfilter", "invoke", "analyze", "model_io", "postfilter",
          "synthesize", "block_analyze", "block_analyze_synthesize", "block_model", "block_postfilter")
#: The frame paths --path can measure.
PATHS = ("compiled", "numpy", "both")
#: Hops per process() call of the chunked stages.
CHUNKS = {"chunk_4": 4, "chunk_64": 64}
#: A file descriptor no process here has open: writing to it fails at once, and the QEMU
#: plugin records the instruction count at that system call (benchmarks/arm/insn_marks.c).
MARK_FD = 1021


def mark() -> None:
    try:
        os.write(MARK_FD, b"m")
    except OSError:
        pass


def stage_loops(model_path: Path, frames: int, warmup: int, compiled: bool | None = None):
    """(stage, thunk over ``frames`` frames) for one model, every object built and warmed up;
    ``compiled`` picks the frame path (runtime.dsp_kernels or numpy alone)."""
    with_pf = StreamDenoiser(model_path, compiled=compiled)
    without_pf = StreamDenoiser(model_path, postfilter="none", compiled=compiled)
    spec = with_pf.spec
    noisy, _ = noisy_example(spec.sample_rate, (frames + warmup + 1) * spec.hop / spec.sample_rate)
    hops = [noisy[i * spec.hop:(i + 1) * spec.hop].copy() for i in range(frames + warmup)]
    run, measured = hops[:warmup], hops[warmup:]
    for hop in run:
        with_pf.process_frame(hop)
        without_pf.process_frame(hop)
    model, dsp = without_pf.model, without_pf.dsp
    wiener = with_pf.dsp.postfilter
    mask = np.array(model(without_pf.model_input), copy=True)
    magnitude = dsp.magnitude.copy()
    if wiener is not None:  # the compiled frame runs the post-filter inside the synthesis call, so
        wiener.update(magnitude)  # its own update must be loaded here, not in the measured stage
    dsp.synthesize(mask)  # likewise the synthesis of a (bins,) output, which a stream never makes

    def frame():
        for hop in measured:
            with_pf.process_frame(hop)

    chunked = StreamDenoiser(model_path, compiled=compiled)
    split = max(1, len(run) - 64)  # the last warm-up hops as one block: its code runs before the measuring
    for hop in run[:split]:
        chunked.process(hop)
    if run[split:]:
        chunked.process(np.concatenate(run[split:]))
    signal = np.concatenate(measured)

    def chunks(size):
        step = size * spec.hop
        pieces = [signal[i:i + step] for i in range(0, len(signal), step)]

        def loop():
            for piece in pieces:
                chunked.process(piece)
        return loop

    def frame_no_postfilter():
        for hop in measured:
            without_pf.process_frame(hop)

    def invoke():
        for _ in measured:
            model.invoke()

    def analyze():
        for hop in measured:
            dsp.analyze(hop)

    def model_io():
        for _ in measured:
            model.set_input(without_pf.model_input)
            model.read_output()

    def postfilter():
        if wiener is None:
            return
        for _ in measured:
            wiener.update(magnitude)

    def synthesize():
        for _ in measured:
            dsp.synthesize(mask)

    block = without_pf.dsp.BLOCK
    blocks = [signal[i:i + block * spec.hop] for i in range(0, len(signal) - block * spec.hop + 1, block * spec.hop)]
    empty = signal[:0]
    dsp.analyze_block(empty, blocks[0])
    features = dsp.block_features.copy()
    block_mags = dsp.block_magnitude.copy()
    block_masks = np.zeros((block, spec.n_bins), np.float32)
    model.run_block(features, block_masks)
    block_gains = np.zeros((block, spec.n_bins))
    if wiener is not None:
        wiener.update_block(block_mags, block_gains)
    block_out = np.zeros(block * spec.hop)
    repeats = max(1, frames // block)

    def block_analyze():
        for i in range(repeats):
            dsp.analyze_block(empty, blocks[i % len(blocks)])

    def block_model():
        for _ in range(repeats):
            model.run_block(features, block_masks)

    def block_postfilter():
        if wiener is None:
            return
        for _ in range(repeats):
            wiener.update_block(block_mags, block_gains)

    def block_analyze_synthesize():
        for i in range(repeats):
            dsp.analyze_block(empty, blocks[i % len(blocks)])
            dsp.synthesize_block(block_masks, block_out)

    loops = dict(block_analyze=block_analyze, block_model=block_model, block_postfilter=block_postfilter,
                 block_analyze_synthesize=block_analyze_synthesize, frame=frame, **{name: chunks(size) for name, size in CHUNKS.items()},
                 frame_no_postfilter=frame_no_postfilter, invoke=invoke, analyze=analyze,
                 model_io=model_io, postfilter=postfilter, synthesize=synthesize)
    return [(name, loops[name]) for name in STAGES], spec


def measure(model_path: Path, frames: int = 256, warmup: int = 100, marks: bool = False,
            compiled: bool | None = None) -> dict:
    """Per-frame microseconds of each stage (None under ``marks``, where the plugin counts).
    ``frames`` is a multiple of the 64-frame block."""
    if frames < 64 or frames % 64:
        raise DenoiseError(f"frames must be a multiple of 64 (the block), got {frames}")
    loops, spec = stage_loops(model_path, frames, warmup, compiled)
    path = "compiled" if compiled_kernels(compiled) is not None else "numpy"
    result = {"model": model_path.name, "path": path, "sample_rate": spec.sample_rate, "hop": spec.hop,
              "frames": frames, "stages": list(STAGES)}
    us = {}
    for name, loop in loops:
        if marks:
            mark()
            loop()
            mark()
        else:
            t0 = time.perf_counter_ns()
            loop()
            us[name] = (time.perf_counter_ns() - t0) / 1e3 / frames
    if not marks:
        result["us_per_frame"] = with_outside(us)
    return result


def with_outside(per_frame: dict) -> dict:
    """Add the work outside the invoke for the frame-by-frame and the chunked stages."""
    out = dict(per_frame)
    out["outside_invoke"] = out["frame"] - out["invoke"]
    for name in CHUNKS:
        out[f"outside_invoke_{name}"] = out[name] - out["invoke"]
    return out


def markdown(rows, unit: str = "us_per_frame", label: str = "us per frame") -> str:
    cols = [*STAGES, "outside_invoke"]
    ratios = ["frame", *CHUNKS]
    lines = [f"| model ({label}) | " + " | ".join(cols) + " | " + " | ".join(
        f"outside / invoke, {r}" for r in ratios) + " |", "|" + "---|" * (len(cols) + 1 + len(ratios))]
    for r in rows:
        v = r[unit]
        cells = [f"{v[c]:.1f}" if unit == "us_per_frame" else f"{v[c] / 1e3:.0f}k" for c in cols]
        shares = [v["outside_invoke" if n == "frame" else f"outside_invoke_{n}"] / v["invoke"] for n in ratios]
        lines.append(f"| {r['model']} ({r.get('path', 'numpy')}) | " + " | ".join(cells) + " | " + " | ".join(f"{x:.2f}x" for x in shares) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.frame_stages",
                                description="Per-stage cost of the streaming frame path (time natively; "
                                            "instruction counts under the QEMU plugin with --marks).")
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files exported by export.to_tflite")
    p.add_argument("--frames", type=int, default=256, help="frames per stage (default 256)")
    p.add_argument("--warmup", type=int, default=100, help="frames before measuring (default 100)")
    p.add_argument("--marks", action="store_true",
                   help="bracket each stage with marks for benchmarks/arm/insn_marks.c instead of timing it")
    p.add_argument("--path", choices=PATHS, default=None,
                   help="the frame path: compiled (runtime.dsp_kernels, needs numba), numpy, or both in "
                        "one run (default: both when numba is installed, else numpy)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the results here")
    args = p.parse_args(argv)
    path = args.path or ("both" if kernels_available() else "numpy")
    if path != "numpy" and not kernels_available():
        print('error: --path compiled needs numba (pip install -e ".[fast]")', file=sys.stderr)
        return 2
    variants = {"both": (True, False), "compiled": (True,), "numpy": (False,)}[path]
    if args.frames < 64 or args.frames % 64 or args.warmup < 0:
        print("error: --frames must be a multiple of 64 and --warmup at least 0", file=sys.stderr)
        return 2
    rows = []
    try:
        for model in args.models:
            if not Path(model).is_file():
                raise DenoiseError(f"{model}: no such model file")
            for compiled in variants:
                rows.append(measure(Path(model), args.frames, args.warmup, marks=args.marks, compiled=compiled))
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if not args.marks:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
