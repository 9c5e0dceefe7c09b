"""The denoising command line, run as ``python -m runtime.denoise`` (runtime/denoise.py).

    python -m runtime.denoise noisy.wav -o clean.wav
    python -m runtime.denoise recordings/ -o cleaned/ --model my_model.tflite

It lives here, not in runtime/denoise.py, so that importing it never shadows the
function ``runtime.denoise``.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .audio_io import AUDIO_EXTENSIONS, find_audio_files
from .errors import DenoiseError
from .file_stream import denoise_file, file_rate, scan_audio
from .offline import HIGH_BAND_MODES
from .stream import DEFAULT_MIN_GAIN_DB, FROM_MODEL, POSTFILTERS, StreamDenoiser, default_model_path


def parse_gain_db(text: str):
    """argparse type for an attenuation limit: a number of dB, 'none' for no limit, or
    'model' for the model's own setting."""
    if text.lower() == "none":
        return None
    if text.lower() == FROM_MODEL:
        return FROM_MODEL
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of dB, 'none' or 'model', got {text!r}") from None


def plan(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs. Several inputs or a folder need -o to be a folder."""
    pairs = []
    out = Path(output)
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for f in find_audio_files([path]):
                pairs.append((f, out / f.relative_to(path)))
        elif path.is_file():
            pairs.append((path, None))
        else:
            raise DenoiseError(f"{path}: no such file or directory")
    singles = [p for p, o in pairs if o is None]
    if len(pairs) == 1 and singles and not out.is_dir():
        if out.suffix.lower() not in AUDIO_EXTENSIONS:
            raise DenoiseError(f"{out}: output needs an audio extension ({', '.join(AUDIO_EXTENSIONS)})")
        return [(singles[0], out)]
    if out.suffix.lower() in AUDIO_EXTENSIONS:
        raise DenoiseError(f"{out}: several inputs need -o to be a folder")
    return [(p, o if o is not None else out / p.name) for p, o in pairs]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.denoise",
                                description="Denoise speech files. Output keeps each input's format and "
                                            "sample rate (other rates are resampled for the model and back).")
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files or folders")
    p.add_argument("-o", "--out", "--output", dest="output", required=True, metavar="OUT",
                   help="output file, or folder for many")
    p.add_argument("--model", default=None,
                   help=".tflite model (default: the bundled model for each file's rate: the 16 kHz "
                        "model for 16 kHz and above, the 8 kHz model below)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    p.add_argument("--min-gain-db", type=parse_gain_db, default=FROM_MODEL, metavar="DB|none|model",
                   help=f"attenuation limit in dB; 'none' removes it (default: the model's own, "
                        f"{DEFAULT_MIN_GAIN_DB:g} for the bundled models)")
    p.add_argument("--postfilter", choices=[*POSTFILTERS, FROM_MODEL], default=FROM_MODEL,
                   help="'wiener' multiplies the model's gain by a power of a classical Wiener gain over "
                        "minimum-statistics noise, which removes steady noise the model leaves; "
                        "'none' plays the model alone (default: the model's own, wiener for the "
                        "bundled models)")
    p.add_argument("--high-band", choices=HIGH_BAND_MODES, default="gain",
                   help="input above the model's Nyquist (e.g. 4-8 kHz of a 16 kHz file): 'gain' keeps "
                        "it, scaled by the model's gain at the top of its band (default); 'drop' "
                        "returns band-limited audio")
    p.add_argument("--compiled", action="store_true",
                   help="run the frame's arithmetic as numba kernels (runtime.dsp_kernels; needs the [fast] "
                        "extra). Files are processed in blocks, where it saves about 40 us a frame but "
                        "costs about 1.5 s to load once, so it pays off from about 5 minutes of audio")
    p.add_argument("--verbose", action="store_true", help="name the model, its rate and spec, and the interpreter")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (one is shown for files over a minute and for many files)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    warnings.simplefilter("always")
    warnings.showwarning = lambda msg, *a, **k: print(f"warning: {msg}", file=sys.stderr)
    try:
        jobs = plan(args.inputs, args.output)
        # Check everything first (block by block, in constant memory): one bad file stops
        # the run before anything is written (and before the interpreter is created,
        # which logs a line of its own).
        for src, _ in jobs:
            scan_audio(src)
        streams: dict[Path, StreamDenoiser] = {}

        def stream_for_file(src: Path) -> StreamDenoiser:
            """The named model, else the bundled one for the file's rate, built once each."""
            path = Path(args.model) if args.model else default_model_path(file_rate(src))
            if path not in streams:
                stream = StreamDenoiser(path, num_threads=args.threads, min_gain_db=args.min_gain_db,
                                        postfilter=args.postfilter, compiled=args.compiled)
                streams[path] = stream
                if args.verbose:
                    s = stream.spec
                    origin = "" if args.model else "bundled, "
                    print(f"model: {path.name} ({origin}{s.model_kind}, {s.sample_rate} Hz, "
                          f"n_fft {s.n_fft}, hop {s.hop}, latency {stream.latency_samples} samples), "
                          f"interpreter: {stream.backend}, post-filter: {stream.postfilter}, "
                          f"frame path: {'compiled' if stream.dsp.compiled else 'numpy'}, "
                          f"attenuation limit: {'none' if stream.min_gain_db is None else f'{stream.min_gain_db:g} dB'}",
                          file=sys.stderr)
            return streams[path]

        if args.model:
            stream_for_file(jobs[0][0])  # a bad model fails before any file is written
        bar = None
        if len(jobs) > 3 and not args.no_progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=len(jobs), unit="file", desc="denoising")
            except ImportError:
                pass
        import soundfile as sf

        for src, dst in jobs:
            subtype = sf.info(str(src)).subtype if src.suffix.lower() != ".mp3" else None
            long_file = src.suffix.lower() != ".mp3" and sf.info(str(src)).duration > 60
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # downmix and truncation were said by the scan
                report = denoise_file(src, dst, stream_for_file(src), high_band=args.high_band,
                                      subtype=subtype if dst.suffix.lower() == src.suffix.lower() else None,
                                      progress=long_file and bar is None and not args.no_progress)
            if args.verbose and long_file:
                print(f"{src}: {report['seconds']:.0f} s of audio at {1 / report['real_time_factor']:.0f}x "
                      "real time", file=sys.stderr)
            if bar is not None:
                bar.update(1)
            elif args.verbose:
                print(f"{src} -> {dst}", file=sys.stderr)
        if bar is not None:
            bar.close()
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the file being written was a temporary one, now removed
        print("interrupted: the file in progress was not written", file=sys.stderr)
        return 130
    return 0
