"""Quality on paired noisy/clean recordings: PESQ, STOI, SI-SDR, overall and per SNR band.

    python -m benchmarks.quality runtime/models/*.tflite --data DIR --plots plots/ --json q.json

DIR is a manifest directory (training.make_dataset) or a folder with clean/ and noisy/
holding files of the same names (VoiceBank-DEMAND layout). Everything is scored at the
model's sample rate (PESQ narrow-band at 8 kHz, wide-band at 16 kHz): pairs at other
rates are resampled first. --score-rate 16000 instead scores 8 kHz models on 16 kHz
audio the way runtime.denoise processes it (resampled for the model and back, the band
above 4 kHz kept or dropped as --high-band says), against a Wiener filter run at 16 kHz. Rows: the unprocessed input, a Wiener-filter baseline and each
model (float and int8 side by side when both are given), and with --peers the field's
real-time denoisers (benchmarks.peers: DTLN, RNNoise, GTCRN, DeepFilterNet3) on the same
audio: each peer hears the recording at its file's rate (resampled only to the peer's own
rate, so a 16 kHz model is not handed band-limited audio), and its output is resampled to
the scoring rate; --peer-input scored gives the peers what our models hear instead. Each system's CPU time per second of audio is
measured in the same run (the quality-versus-cost plot).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from runtime.audio_io import find_audio_files, read_audio, resample
from training import manifest
from runtime.errors import DenoiseError
from runtime.metrics import all_metrics, snr_band_label
from runtime.model_file import read_spec
from runtime.cli import parse_gain_db
from runtime.offline import HIGH_BAND_MODES, denoise
from runtime.stream import FROM_MODEL, POSTFILTERS, StreamDenoiser

from .baseline import oracle_mask, wiener_denoise
from .peers import DEFAULT_PEER_ROOT, load_peers, parse_peers

SNR_BANDS = (-np.inf, 2.5, 7.5, 12.5, np.inf)
SCORE_RATES = (8000, 16000)
PEER_INPUTS = ("file", "scored")
#: The row of --oracle (benchmarks.baseline.oracle_mask).
ORACLE = "oracle mask"


def load_pairs(data_dir) -> list[dict]:
    """[{name, noisy, clean, snr_db?}] from a manifest dir or clean/ + noisy/ folders."""
    data_dir = Path(data_dir)
    if manifest.has_manifest(data_dir):
        rows = manifest.read(data_dir)
        split = [r for r in rows if r.get("split") == "dev"] or rows
        return [{"name": r["id"], "noisy": Path(r["noisy"]), "clean": Path(r["clean"]),
                 "snr_db": float(r["snr_db"])} for r in split]
    if (data_dir / "clean").is_dir() and (data_dir / "noisy").is_dir():
        pairs = []
        for clean in find_audio_files([data_dir / "clean"]):
            noisy = data_dir / "noisy" / clean.relative_to(data_dir / "clean")
            if noisy.exists():
                pairs.append({"name": clean.stem, "noisy": noisy, "clean": clean, "snr_db": None})
        if pairs:
            return pairs
    raise DenoiseError(f"{data_dir}: expected manifest.csv or clean/ and noisy/ with matching files")


def display_names(models) -> list[str]:
    """File names, or parent/name where two models share a file name (a retrained model
    beside the bundled one must not overwrite its row)."""
    names = [Path(m).name for m in models]
    return [f"{Path(m).parent.name}/{n}" if names.count(n) > 1 else n for m, n in zip(models, names)]


def evaluate(models, data_dir, limit=None, plots=None, threads=1,
             min_gain_db=FROM_MODEL, input_gain_db=0.0, score_rate=None,
             high_band="gain", clean_input=False, postfilter=FROM_MODEL,
             peers=(), peer_root=DEFAULT_PEER_ROOT, peer_input="file", oracle=False) -> dict:
    """Scores per pair and per SNR band. input_gain_db plays every noisy file louder or
    quieter into the systems (their outputs are scaled back before scoring), to see how
    a model copes with recordings at another level than its training data. score_rate
    (8000 or 16000; default the models' rate) is the rate audio is scored at. clean_input
    feeds the clean references instead of the noisy files: what a system does to speech
    that needs no cleaning (its "noisy" row is then the clean input itself). postfilter
    is the runtime's ("wiener" or "none"), or "both": each model twice, the rows without
    it named "<model> (no post-filter)". peers names benchmarks.peers runners to score
    beside the models (those that cannot run here are skipped with a note); peer_input
    "file" feeds them the recording at its own rate, "scored" the audio our models get.
    oracle adds the row "oracle mask": the ideal bounded mask of each pair (it reads the
    clean reference), the ceiling of a mask on the noisy magnitude."""
    if peer_input not in PEER_INPUTS:
        raise DenoiseError(f"peer_input must be one of {PEER_INPUTS}, got {peer_input!r}")
    pairs = load_pairs(data_dir)[:limit]
    specs = [read_spec(m) for m in models]
    rates = {s.sample_rate for s in specs}
    if len(rates) != 1 and not score_rate:
        raise DenoiseError(f"models of different rates {sorted(rates)}: give --score-rate to score "
                           f"them all at one rate, each run as runtime.denoise runs it")
    model_rate = min(rates)  # the band above the lowest model's Nyquist is reported
    rate = score_rate or model_rate
    if rate not in SCORE_RATES:
        raise DenoiseError(f"PESQ scores at {' or '.join(map(str, SCORE_RATES))} Hz, not {rate}")
    # the baseline runs at the scoring rate with the models' frame and hop durations
    wiener_spec = scaled_spec(specs[0], rate)
    names = display_names(models)
    if len(set(names)) < len(names):
        raise DenoiseError("two models share a folder and file name; give each model once")
    variants = [(pf, "" if postfilter != "both" or pf == "wiener" else " (no post-filter)")
                for pf in (POSTFILTERS if postfilter == "both" else (postfilter,))]
    streams = {n + suffix: StreamDenoiser(m, num_threads=threads, min_gain_db=min_gain_db, postfilter=pf)
               for n, m in zip(names, models) for pf, suffix in variants}
    peer_runners = load_peers(peers, peer_root, note=lambda m: print(m, file=sys.stderr))
    systems = ["noisy", "wiener"] + list(streams) + [p.label for p in peer_runners]
    if oracle:
        systems.insert(2, ORACLE)
    cpu = {s: 0.0 for s in systems[1:] if s != ORACLE}
    audio_seconds = 0.0
    gain = 10 ** (input_gain_db / 20)
    per_file = []
    try:
        from tqdm import tqdm

        iterator = tqdm(pairs, unit="pair", desc="scoring", file=sys.stderr)
    except ImportError:
        iterator = pairs
    example = None
    for pair in iterator:
        noisy, r1 = read_audio(pair["noisy"])
        clean, r2 = read_audio(pair["clean"])
        raw = clean if clean_input else noisy  # at the file's rate, for the peers
        raw_rate = r2 if clean_input else r1
        noisy, clean = resample(noisy, r1, rate), resample(clean, r2, rate)
        n = min(len(noisy), len(clean))
        noisy, clean = noisy[:n], clean[:n]
        if clean_input:
            noisy = clean.copy()
        if peer_input == "scored":
            raw, raw_rate = noisy, rate
        snr = pair["snr_db"] if pair["snr_db"] is not None else float(
            10 * np.log10(np.sum(clean ** 2) / max(np.sum((noisy - clean) ** 2), 1e-20)))
        played = noisy * gain
        audio_seconds += n / rate
        t0 = time.process_time()
        outputs = {"noisy": noisy, "wiener": wiener_denoise(played, wiener_spec) / gain}
        cpu["wiener"] += time.process_time() - t0
        if oracle:
            outputs[ORACLE] = oracle_mask(noisy, clean, wiener_spec)
        for name, sd in streams.items():
            t0 = time.process_time()
            outputs[name] = denoise(played, rate, sd, high_band=high_band) / gain
            cpu[name] += time.process_time() - t0
        for peer in peer_runners:
            result = peer.run(raw * gain, raw_rate)
            heard = resample(result.audio, raw_rate, rate)
            outputs[peer.label] = np.pad(heard, (0, max(0, n - len(heard))))[:n] / gain
            cpu[peer.label] += result.cpu_seconds
        row = {"name": pair["name"], "snr_db": snr}
        for system, audio in outputs.items():
            row[system] = all_metrics(clean, audio, rate)
        per_file.append(row)
        if example is None or abs(snr - 5) < abs(example[0] - 5):
            example = (snr, pair["name"], clean, outputs)
    summary = {}
    for system in systems:
        summary[system] = {"all": _mean(per_file, system)}
        for lo, hi in zip(SNR_BANDS[:-1], SNR_BANDS[1:]):
            band = [r for r in per_file if lo <= r["snr_db"] < hi]
            if band:
                summary[system][snr_band_label(lo, hi)] = _mean(band, system)
    result = {"rate": rate, "model_rate": model_rate, "pairs": len(per_file), "min_gain_db": min_gain_db,
              "postfilter": postfilter,
              "input_gain_db": input_gain_db, "clean_input": clean_input, "high_band": high_band if rate > model_rate else None,
              "summary": summary, "per_file": per_file,
              "peers": [p.label for p in peer_runners], "peer_input": peer_input,
              "cost": {n + suffix: _macs_per_second(s) for n, s in zip(names, specs) for _, suffix in variants},
              # ours: the whole runtime.denoise call; peers: their streaming loop (no resampling)
              "cpu_ms_per_second": {s: 1e3 * c / max(audio_seconds, 1e-9) for s, c in cpu.items()}}
    if plots:
        from .plots import quality_vs_cost, spectrograms

        Path(plots).mkdir(parents=True, exist_ok=True)
        snr, name, clean, outputs = example
        spectrograms(Path(plots) / f"spectrograms_{name}.png", clean, outputs, wiener_spec,
                     title=f"{name} ({snr:.1f} dB SNR)")
        quality_vs_cost(Path(plots) / "quality_vs_cost.png", result)
    return result


def scaled_spec(spec, rate: int):
    """spec's frame and hop durations at another sample rate (for the Wiener baseline)."""
    if rate == spec.sample_rate:
        return spec
    hop = max(1, round(spec.hop * rate / spec.sample_rate))
    n_fft = hop * (spec.n_fft // spec.hop)
    return spec.replace(sample_rate=rate, hop=hop, n_fft=n_fft, win_length=n_fft,
                        feature_mean=[], feature_std=[])


def _macs_per_second(spec):
    macs = (spec.info or {}).get("macs_per_frame")
    return macs * spec.sample_rate / spec.hop if macs else None


def _mean(rows, system) -> dict:
    keys = ("pesq", "stoi", "si_sdr")
    return {k: float(np.nanmean([r[system][k] for r in rows])) for k in keys} | {"n": len(rows)}


def markdown(result) -> str:
    bands = [b for b in next(iter(result["summary"].values())) if b != "all"]
    lines = ["| system | PESQ | STOI | SI-SDR (dB) | CPU ms per s | " + " | ".join(f"PESQ {b}" for b in bands) + " |",
             "|" + "---|" * (5 + len(bands))]
    cpu = result.get("cpu_ms_per_second", {})
    base = result["summary"]["noisy"]["all"]
    for system, s in result["summary"].items():
        a = s["all"]
        delta = "" if system == "noisy" else f" ({a['pesq'] - base['pesq']:+.2f})"
        band_cells = " | ".join(f"{s[b]['pesq']:.2f}" if b in s else "-" for b in bands)
        cost = f"{cpu[system]:.1f}" if system in cpu else "-"
        lines.append(f"| {system} | {a['pesq']:.2f}{delta} | {a['stoi']:.3f} | {a['si_sdr']:.1f} | {cost} | {band_cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality",
                                description="PESQ/STOI/SI-SDR of models against the noisy input and a "
                                            "Wiener baseline on paired recordings.")
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite models (same sample rate)")
    p.add_argument("--data", required=True, help="manifest dir, or a folder with clean/ and noisy/")
    p.add_argument("--limit", type=int, default=None, help="score only the first N pairs")
    p.add_argument("--json", default=None, help="write per-file and summary results here")
    p.add_argument("--plots", default=None, help="folder for spectrogram and quality-vs-cost plots")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-gain-db", type=parse_gain_db, default=FROM_MODEL, metavar="DB|none|model",
                   help="attenuation limit of the models, as in runtime.denoise (default: each model's own)")
    p.add_argument("--input-gain-db", type=float, default=0.0, metavar="DB",
                   help="play the noisy files this much louder (or, negative, quieter) into the "
                        "systems; outputs are scaled back before scoring (default 0)")
    p.add_argument("--score-rate", type=int, nargs="+", choices=SCORE_RATES, default=[None], metavar="HZ",
                   help="score at 8000 or 16000 Hz, or both in one run ('--score-rate 16000 8000'; "
                        "default: the models' rate); at 16000, 8 kHz models run as runtime.denoise "
                        "runs them on 16 kHz files. With two rates the JSON holds {\"results\": [...]} "
                        "and the plots go to PLOTS/<rate>/")
    p.add_argument("--high-band", choices=HIGH_BAND_MODES, default="gain",
                   help="with --score-rate above the models' rate: keep the band above their "
                        "Nyquist scaled by their gain (default, as runtime.denoise) or drop it")
    p.add_argument("--postfilter", choices=[*POSTFILTERS, FROM_MODEL, "both"], default=FROM_MODEL,
                   help="the models' post-filter, as runtime.denoise --postfilter (default: each "
                        "model's own); 'both' scores each model with and without it")
    p.add_argument("--peers", default="none", metavar="LIST",
                   help="the field's denoisers to score beside the models: all, none (default) or "
                        "a comma-separated list of dtln, dtln-quant, rnnoise, gtcrn, dfn3 (pip install "
                        "-e \".[peers]\"; a peer that cannot run here is skipped with a note)")
    p.add_argument("--peer-root", default=str(DEFAULT_PEER_ROOT), metavar="DIR",
                   help="folder with the peers' model files (dtln/, gtcrn/; default ../shared/peers)")
    p.add_argument("--peer-input", choices=PEER_INPUTS, default="file",
                   help="what the peers hear: the recording at its file's rate (default; their "
                        "output is resampled to the scoring rate) or the scored audio our models get")
    p.add_argument("--clean-input", action="store_true",
                   help="feed the clean references instead of the noisy files, to see how much each "
                        "system damages speech that needs no cleaning (SNR bands stay the pairs')")
    p.add_argument("--oracle", action="store_true",
                   help="add the ideal bounded mask of each pair (computed from the clean reference): "
                        "the ceiling of a [0, 1] mask on the noisy magnitude and phase, to see how much "
                        "a model has left to learn")
    args = p.parse_args(argv)
    if not -60 <= args.input_gain_db <= 20:
        print("error: --input-gain-db must be between -60 and 20", file=sys.stderr)
        return 2
    rates = list(dict.fromkeys(args.score_rate))
    results = []
    try:
        peer_names = parse_peers(args.peers)
        for rate in rates:
            plots = (str(Path(args.plots) / str(rate)) if len(rates) > 1 else args.plots) if args.plots else None
            results.append(evaluate(args.models, args.data, args.limit, plots, args.threads, args.min_gain_db,
                                    args.input_gain_db, rate, args.high_band, args.clean_input,
                                    args.postfilter, peer_names, args.peer_root, args.peer_input,
                                    args.oracle))
            print_result(results[-1], args)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results[0] if len(results) == 1 else {"results": results}, indent=2))
    if args.plots:
        print(f"plots written to {args.plots}/")
    return 0


def print_result(result, args) -> None:
    print(f"{result['pairs']} pairs from {args.data}, scored at {result['rate']} Hz "
          f"(PESQ {'narrow' if result['rate'] == 8000 else 'wide'}-band), "
          f"models at min gain {result['min_gain_db']}"
          + ("" if result["min_gain_db"] in (None, FROM_MODEL) else " dB")
          + f", post-filter {args.postfilter}"
          + (f", input played {args.input_gain_db:+g} dB" if args.input_gain_db else "")
          + (", the clean references as input (the 'noisy' row is that input)" if args.clean_input else "")
          + (f", {result['model_rate']} Hz models with the high band {result['high_band']}"
             if result["high_band"] else "")
          + (f"; peers hear {'the files at their own rate' if args.peer_input == 'file' else 'the scored audio'}"
             if result["peers"] else ""))
    print(markdown(result))
    print()


if __name__ == "__main__":
    sys.exit(main())
