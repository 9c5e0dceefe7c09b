"""Build noisy/clean pairs from folders of real speech and noise.

    python -m training.make_dataset --clean SPEECH_DIR --noise NOISE_DIR --out data/mix

Every example is derived from (seed, index) alone, so the output is byte-identical for
a seed and an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.audio_io import find_audio_files, read_audio, resample, write_audio
from runtime.errors import AudioError, DenoiseError

from . import noise_gen
from .mixing import fit_length, mic_colouring, mix_at_snr, power, snr_db, trim_silence

MANIFEST_FIELDS = ["id", "split", "noisy", "clean", "snr_db", "speech_source", "noise_source"]


@dataclass
class MixConfig:
    sample_rate: int = 8000
    snr_min: float = 0.0
    snr_max: float = 40.0
    snr_weighting: str = "uniform"  # or "low": more examples near snr_min
    seconds: float = 4.0
    seed: int = 0
    generated_noise: float = 0.0  # fraction of examples with noise made in code
    dev_fraction: float = 0.0
    group_regex: str | None = None
    augment_noise: bool = False  # random tilt, level drift and a second layer of noise
    snr_values: tuple = ()  # fixed SNRs used in turn instead of a random draw
    only_split: str | None = None  # "dev": every pair from the held-out groups (evaluation sets)
    speech_dbfs: tuple = (-35.0, -15.0)  # range of the clean speech's RMS level
    colour_speech: float = 0.0  # fraction of pairs whose speech gets a random mic/room colouring
    second_noise: float = 0.0  # fraction of pairs with a second, independent noise source
    more_noise_kinds: bool = False  # generated noise also draws music, tonal alarms, modulated noise
    noise_speed: float = 0.0  # fraction of recorded noises played 0.7-1.4x as fast


def group_of(path: Path, regex: str | None) -> str:
    """Speaker / recording group used for the dev split (file stem unless regex captures)."""
    if regex:
        m = re.search(regex, path.stem)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    return path.stem


def dev_groups(paths: list[Path], cfg: MixConfig) -> set[str]:
    """Groups held out for dev: a fixed, seed-independent pick of round(fraction * groups),
    at least one when the fraction is positive and there are two groups or more."""
    groups = sorted({group_of(p, cfg.group_regex) for p in paths},
                    key=lambda g: hashlib.md5(g.encode()).hexdigest())
    if cfg.dev_fraction <= 0 or len(groups) < 2:
        return set()
    n = min(len(groups) - 1, max(1, round(cfg.dev_fraction * len(groups))))
    return set(groups[:n])


class SourceCache:
    """Reads, trims and resamples source files once, keeping the most recent in memory."""

    def __init__(self, rate: int, trim: bool, size: int = 64):
        self.rate, self.trim, self.size = rate, trim, size
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.bad: set[Path] = set()

    def get(self, path: Path) -> np.ndarray | None:
        if path in self.bad:
            return None
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        try:
            audio, rate = read_audio(path, mono="downmix")
        except AudioError:
            self.bad.add(path)
            return None
        audio = resample(audio, rate, self.rate)
        if self.trim:
            audio = trim_silence(audio, self.rate)
        if len(audio) < self.rate // 10 or not np.any(audio):
            self.bad.add(path)
            return None
        self._cache[path] = audio
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return audio


def _pick(files: list[Path], cache: SourceCache, rng: np.random.Generator):
    """A random readable file and its audio; None if every file is unreadable."""
    for _ in range(50):
        path = files[int(rng.integers(len(files)))]
        audio = cache.get(path)
        if audio is not None:
            return path, audio
    good = [p for p in files if p not in cache.bad]
    for path in good:
        audio = cache.get(path)
        if audio is not None:
            return path, audio
    return None


def _draw_noise(speech_files, noise_files, cfg: MixConfig, speech_cache, noise_cache,
                rng: np.random.Generator, length: int, exclude: Path):
    """(noise, source name): a recorded noise, or one made in code with probability
    cfg.generated_noise (babble uses speakers other than ``exclude``)."""
    use_generated = not noise_files or rng.random() < cfg.generated_noise
    if use_generated:
        kinds = noise_gen.KINDS + (noise_gen.EXTRA_KINDS if cfg.more_noise_kinds else ())
        kind = kinds[int(rng.integers(len(kinds)))]
        segments = []
        if kind == "babble":
            for _ in range(int(rng.integers(3, 8))):
                other = _pick(speech_files, speech_cache, rng)
                if other is not None and other[0] != exclude:
                    segments.append(other[1])
        noise = noise_gen.generate(kind, length, cfg.sample_rate, rng, segments)
        noise_source = f"generated:{kind}"
    else:
        picked = _pick(noise_files, noise_cache, rng)
        if picked is None:
            raise DenoiseError("no readable noise files")
        noise, noise_source = picked[1], str(picked[0])
        if cfg.noise_speed and rng.random() < cfg.noise_speed:
            factor = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
            noise = noise_gen.speed_change(noise, factor)
            noise_source = f"{noise_source}@{factor:.2f}x"
        noise = fit_length(noise, length, rng)
    if cfg.augment_noise:
        noise = noise_gen.augment(noise, cfg.sample_rate, rng)
    return noise, noise_source


def make_example(index: int, speech_files, noise_files, cfg: MixConfig,
                 speech_cache: SourceCache, noise_cache: SourceCache):
    """(noisy, clean, row) for one example index, deterministic in (seed, index)."""
    rng = np.random.default_rng([cfg.seed, index])
    length = int(cfg.seconds * cfg.sample_rate)
    picked = _pick(speech_files, speech_cache, rng)
    if picked is None:
        raise DenoiseError("no readable speech files")
    path, audio = picked
    sources = [path]
    if len(audio) >= length:
        start = int(rng.integers(0, len(audio) - length + 1))
        speech = audio[start:start + length]
    else:  # short clips (digits, commands): concatenate clips of the same group with gaps
        pieces, total = [], 0
        while total < length:
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * cfg.sample_rate))
            pieces += [audio, gap]
            total += len(audio) + len(gap)
            more = _pick(speech_files, speech_cache, rng)
            if more is None:
                break
            path2, audio = more
            sources.append(path2)
        speech = np.concatenate(pieces)[:length]

    noise, noise_source = _draw_noise(speech_files, noise_files, cfg, speech_cache, noise_cache,
                                      rng, length, exclude=path)

    u = rng.random()
    if cfg.snr_weighting == "low":
        u = u ** 2
    snr = cfg.snr_min + (cfg.snr_max - cfg.snr_min) * u
    if cfg.snr_values:
        snr = float(cfg.snr_values[index % len(cfg.snr_values)])
    # Draws below exist only when their option is on, so older datasets keep their bytes.
    if cfg.second_noise and rng.random() < cfg.second_noise:
        other, other_source = _draw_noise(speech_files, noise_files, cfg, speech_cache, noise_cache,
                                          rng, length, exclude=path)
        level = 10 ** (-rng.uniform(0.0, 10.0) / 20) * np.sqrt(power(noise) / max(power(other), 1e-20))
        noise = noise + level * other
        noise_source = f"{noise_source}+{other_source}"
    if cfg.colour_speech and rng.random() < cfg.colour_speech:
        speech = mic_colouring(speech, cfg.sample_rate, rng)
    noisy, clean = mix_at_snr(speech, noise, snr, speech_dbfs=rng.uniform(*cfg.speech_dbfs))
    row = {
        "id": f"{index:06d}",
        "snr_db": f"{snr_db(clean, noisy - clean):.4f}",
        "speech_source": ";".join(dict.fromkeys(str(s) for s in sources)),
        "noise_source": noise_source,
    }
    return noisy, clean, row


def make_dataset(clean_dirs, noise_dirs, out_dir, count: int, cfg: MixConfig,
                 progress: bool = True) -> dict:
    """Write pairs and manifest.csv under out_dir; returns counts (written, resumed, bad files)."""
    out = Path(out_dir)
    speech_all = find_audio_files(clean_dirs)
    noise_all = find_audio_files(noise_dirs or [])
    if not speech_all:
        raise DenoiseError(f"no audio files found under {', '.join(map(str, clean_dirs))}")
    if noise_dirs and not noise_all and cfg.generated_noise < 1.0:
        raise DenoiseError(f"no audio files found under {', '.join(map(str, noise_dirs))}")
    dev_speech, dev_noise = dev_groups(speech_all, cfg), dev_groups(noise_all, cfg)
    splits = {}
    for split in ("train", "dev"):
        want_dev = split == "dev"
        speech = [p for p in speech_all if (group_of(p, cfg.group_regex) in dev_speech) == want_dev]
        noise = [p for p in noise_all if (group_of(p, cfg.group_regex) in dev_noise) == want_dev]
        splits[split] = (speech, noise)
    if cfg.dev_fraction > 0 and not splits["dev"][0]:
        raise DenoiseError("--dev-fraction left no speech group for dev; raise it or check --group-regex")

    for sub in ("noisy", "clean"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    partial = out / "manifest.partial.csv"
    done = {}
    for previous in (out / "manifest.csv", partial):  # a finished run, then an interrupted one
        if previous.exists():
            with open(previous, newline="") as f:
                for row in csv.DictReader(f):
                    if (out / row["noisy"]).exists() and (out / row["clean"]).exists():
                        done[row["id"]] = row
    speech_cache = SourceCache(cfg.sample_rate, trim=True)
    noise_cache = SourceCache(cfg.sample_rate, trim=False)
    n_dev = int(round(count * cfg.dev_fraction))
    todo = [i for i in range(count) if f"{i:06d}" not in done]
    bar = _progress(len(todo), progress, "mixing")
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for key in sorted(done):
            writer.writerow({k: done[key][k] for k in MANIFEST_FIELDS})
        for i in todo:
            split = cfg.only_split or ("dev" if i >= count - n_dev else "train")
            speech, noise = splits[split]
            noisy, clean, row = make_example(i, speech, noise, cfg, speech_cache, noise_cache)
            row.update(split=split, noisy=f"noisy/{row['id']}.wav", clean=f"clean/{row['id']}.wav")
            write_audio(out / row["noisy"], noisy, cfg.sample_rate, subtype="PCM_24")
            write_audio(out / row["clean"], clean, cfg.sample_rate, subtype="PCM_24")
            writer.writerow(row)
            f.flush()
            done[row["id"]] = row
            bar.update(1)
    bar.close()
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for key in sorted(done):
            writer.writerow({k: done[key][k] for k in MANIFEST_FIELDS})
    partial.unlink()
    bad = sorted(map(str, speech_cache.bad | noise_cache.bad))
    return {"written": len(todo), "resumed": count - len(todo), "unreadable_files": bad}


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="pair")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.make_dataset",
        description="Mix clean speech and noise folders into noisy/clean pairs with manifest.csv. "
                    "Audio files (wav/flac/ogg/mp3) are found recursively in any layout.")
    p.add_argument("--clean", nargs="+", required=True, metavar="DIR", help="folders of clean speech")
    p.add_argument("--noise", nargs="*", default=[], metavar="DIR",
                   help="folders of noise recordings (none: all noise is generated)")
    p.add_argument("--out", required=True, help="output folder (re-running resumes)")
    p.add_argument("--sample-rate", type=int, default=8000, help="output rate in Hz (default 8000)")
    p.add_argument("--snr-min", type=float, default=0.0, help="lowest SNR in dB (default 0)")
    p.add_argument("--snr-max", type=float, default=40.0, help="highest SNR in dB (default 40)")
    p.add_argument("--snr-values", default=None, metavar="LIST",
                   help="comma-separated SNRs in dB used in turn (e.g. 0,5,10,15 for an evaluation "
                        "set); overrides --snr-min/--snr-max")
    p.add_argument("--snr-weighting", choices=["uniform", "low"], default="uniform",
                   help="'low' draws more mixtures near --snr-min")
    p.add_argument("--count", type=int, default=1000, help="number of pairs (default 1000)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each pair (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--generated-noise", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of pairs whose noise is made in code: babble from other "
                        "speakers, coloured noise, hum, transients (default 0)")
    p.add_argument("--augment-noise", action="store_true",
                   help="vary each noise: random spectral tilt, slow level drift, and sometimes "
                        "a second generated noise underneath (helps unseen noises)")
    p.add_argument("--speech-dbfs", type=float, nargs=2, default=[-35.0, -15.0], metavar=("LOW", "HIGH"),
                   help="range of speech RMS levels in dBFS (default -35 -15); widen it (e.g. -50 -10) "
                        "for recordings whose level you do not control")
    p.add_argument("--colour-speech", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of pairs whose speech (and so the clean target) goes through a "
                        "random microphone/room colouring: high-pass, tilt, one peak or dip (default 0)")
    p.add_argument("--second-noise", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of pairs with a second, independent noise 0-10 dB below the first "
                        "(scenes with more than one source; default 0)")
    p.add_argument("--more-noise-kinds", action="store_true",
                   help="generated noise also includes background music, sirens/alarms/beeps and "
                        "slowly modulated traffic/wind-like noise")
    p.add_argument("--noise-speed", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of recorded noises played at a random 0.7-1.4x speed, which "
                        "shifts their spectrum and tempo (default 0)")
    p.add_argument("--dev-fraction", type=float, default=0.0,
                   help="fraction of speech/noise groups held out for the dev split (default 0)")
    p.add_argument("--only-split", choices=["train", "dev"], default=None,
                   help="write only pairs of this split (e.g. a dev evaluation set at a fixed SNR)")
    p.add_argument("--group-regex", default=None,
                   help="regex on the file stem whose first group names the speaker "
                        "(default: the stem itself), e.g. '_([a-z]+)_' for FSDD")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.snr_min <= args.snr_max:
        print("error: need 0 <= --snr-min <= --snr-max", file=sys.stderr)
        return 2
    fractions = (args.colour_speech, args.second_noise, args.generated_noise, args.noise_speed)
    if not all(0 <= v <= 1 for v in fractions):
        print("error: --colour-speech, --second-noise, --generated-noise and --noise-speed are "
              "fractions in [0, 1]",
              file=sys.stderr)
        return 2
    low, high = args.speech_dbfs
    if not -100 < low <= high < 0:
        print("error: --speech-dbfs needs -100 < LOW <= HIGH < 0", file=sys.stderr)
        return 2
    if args.count < 1 or args.seconds <= 0:
        print("error: --count and --seconds must be positive", file=sys.stderr)
        return 2
    try:
        snr_values = tuple(float(v) for v in args.snr_values.split(",")) if args.snr_values else ()
    except ValueError:
        print(f"error: --snr-values must be comma-separated numbers, got {args.snr_values!r}", file=sys.stderr)
        return 2
    cfg = MixConfig(sample_rate=args.sample_rate, snr_values=snr_values, snr_min=args.snr_min, snr_max=args.snr_max,
                    snr_weighting=args.snr_weighting, seconds=args.seconds, seed=args.seed,
                    generated_noise=args.generated_noise, dev_fraction=args.dev_fraction,
                    augment_noise=args.augment_noise, only_split=args.only_split,
                    group_regex=args.group_regex, colour_speech=args.colour_speech,
                    second_noise=args.second_noise, speech_dbfs=tuple(args.speech_dbfs),
                    more_noise_kinds=args.more_noise_kinds, noise_speed=args.noise_speed)
    try:
        result = make_dataset(args.clean, args.noise, args.out, args.count, cfg,
                              progress=not args.quiet)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result['written']} pairs written, {result['resumed']} already present, "
          f"{len(result['unreadable_files'])} unreadable files skipped -> {args.out}/manifest.csv")
    for path in result["unreadable_files"][:10]:
        print(f"  skipped: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
