"""Build noisy/clean pairs from folders of real speech and noise.

    python -m training.make_dataset --clean SPEECH_DIR --noise NOISE_DIR --out data/mix

Every example is derived from (seed, index) alone, so the output is byte-identical for
a seed and an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.audio_io import find_audio_files, read_audio, resample, write_audio
from runtime.errors import AudioError, DenoiseError

from . import manifest, noise_gen, recording_effects
from .mixing import fit_length, mic_colouring, mix_at_snr, power, snr_db, trim_silence

MANIFEST_FIELDS, EFFECTS_FIELD = manifest.FIELDS, manifest.EFFECTS_FIELD


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
    balance_groups: bool = False  # draw a speaker (group) first, then one of its files
    reverb: float = 0.0  # fraction of pairs whose speech plays in a simulated room
    reverb_target: str = "early"  # clean target of those: early reflections, dry or reverberant
    rooms: int = 96  # simulated rooms to draw from
    channel: float = 0.0  # fraction of pairs through a handset/headset/telephone/codec response
    clipping: float = 0.0  # fraction of pairs whose noisy input clips
    noise_events: float = 0.0  # fraction of pairs with short noise events dropped in
    upsample_speech: bool = False  # keep clean speech recorded below sample_rate (band-limited)
    crowd: float = 0.0  # fraction of noises that are a crowd of many talkers (before other draws)
    balance_noise: bool = False  # draw a noise source folder first, then one of its files

    def has_effects(self) -> bool:
        return bool(self.reverb or self.channel or self.clipping or self.noise_events)


def group_of(path: Path, regex: str | None) -> str:
    """Speaker / recording group used for the dev split (file stem unless regex captures)."""
    if regex:
        m = re.search(regex, path.stem)
        if m:
            # with alternatives (one per corpus) the first group that took part names it
            return next((g for g in m.groups() if g is not None), m.group(0))
    return path.stem


class GroupedFiles(list):
    """Files as a list of groups (speakers): picks draw a group, then a file in it, so a
    corpus of many short clips from few speakers does not outweigh one of many speakers."""

    @classmethod
    def of(cls, paths: list[Path], regex: str | None) -> "GroupedFiles":
        groups: dict[str, list[Path]] = {}
        for p in paths:
            groups.setdefault(group_of(p, regex), []).append(p)
        return cls(groups[g] for g in sorted(groups))

    @classmethod
    def by_source(cls, paths: list[Path], roots) -> "GroupedFiles":
        """Files grouped by the folder right below the --noise folder that holds them
        (a corpus or a kind: urbansound8k, ambient_kitchen), so one corpus of thousands of
        clips does not drown the long ambience recordings of another."""
        groups: dict[str, list[Path]] = {}
        resolved = [Path(r).resolve() for r in roots]
        for p in paths:
            key = str(p.parent)
            for root in resolved:
                try:
                    rel = p.resolve().relative_to(root)
                except ValueError:
                    continue
                key = str(root / rel.parts[0]) if len(rel.parts) > 1 else str(root)
                break
            groups.setdefault(key, []).append(p)
        return cls(groups[g] for g in sorted(groups))

    def flat(self) -> list[Path]:
        return [p for g in self for p in g]


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
    """Reads, trims and resamples source files once, keeping the most recent in memory
    (thousands: with corpora of many clips a small cache re-reads a file for most pairs)."""

    def __init__(self, rate: int, trim: bool, size: int = 4096, min_rate: int = 0):
        self.rate, self.trim, self.size, self.min_rate = rate, trim, size, min_rate
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.bad: set[Path] = set()
        #: files recorded below min_rate: upsampled, they would teach an empty upper band
        self.low_rate: set[Path] = set()

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
        if rate < self.min_rate:
            self.bad.add(path)
            self.low_rate.add(path)
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


def _pick(files, cache: SourceCache, rng: np.random.Generator):
    """A random readable file and its audio; None if every file is unreadable. ``files``
    is a list of paths, or GroupedFiles (or one group of it) to draw a group first."""
    if not files:
        return None
    grouped = isinstance(files, GroupedFiles)
    for _ in range(50):
        group = files[int(rng.integers(len(files)))] if grouped else files
        path = group[int(rng.integers(len(group)))]
        audio = cache.get(path)
        if audio is not None:
            return path, audio
    good = [p for p in (files.flat() if grouped else files) if p not in cache.bad]
    for path in good:
        audio = cache.get(path)
        if audio is not None:
            return path, audio
    return None


def _other_talkers(low: int, high: int, speech_files, speech_cache, rng, exclude: Path) -> list:
    """The speech of low..high-1 draws of other files than ``exclude`` (babble, crowds)."""
    talkers = []
    for _ in range(int(rng.integers(low, high))):
        other = _pick(speech_files, speech_cache, rng)
        if other is not None and other[0] != exclude:
            talkers.append(other[1])
    return talkers


def _draw_noise(speech_files, noise_files, cfg: MixConfig, speech_cache, noise_cache,
                rng: np.random.Generator, length: int, exclude: Path):
    """(noise, source name): a recorded noise, or one made in code with probability
    cfg.generated_noise (babble uses speakers other than ``exclude``)."""
    if cfg.crowd and rng.random() < cfg.crowd:
        talkers = _other_talkers(8, 25, speech_files, speech_cache, rng, exclude)
        noise = noise_gen.crowd(length, cfg.sample_rate, talkers, rng)
        noise_source = f"generated:crowd{len(talkers)}"
    elif not noise_files or rng.random() < cfg.generated_noise:
        kinds = noise_gen.KINDS + (noise_gen.EXTRA_KINDS if cfg.more_noise_kinds else ())
        kind = kinds[int(rng.integers(len(kinds)))]
        segments = _other_talkers(3, 8, speech_files, speech_cache, rng, exclude) if kind == "babble" else []
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
                 speech_cache: SourceCache, noise_cache: SourceCache, rooms=None):
    """(noisy, clean, row) for one example index, deterministic in (seed, index).
    ``rooms`` is the RoomBank that cfg.reverb draws from."""
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
    else:  # short clips (digits, commands): concatenate clips with gaps
        # (balanced: clips of the same speaker, so the pair stays one talker)
        same_speaker = (next(g for g in speech_files if path in g)
                        if isinstance(speech_files, GroupedFiles) else speech_files)
        pieces, total = [], 0
        while total < length:
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * cfg.sample_rate))
            pieces += [audio, gap]
            total += len(audio) + len(gap)
            more = _pick(same_speaker, speech_cache, rng)
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
    effects = []
    if cfg.noise_events and noise_files and rng.random() < cfg.noise_events:
        events = [_pick(noise_files, noise_cache, rng) for _ in range(int(rng.integers(1, 5)))]
        events = [e[1] for e in events if e is not None]
        noise = recording_effects.noise_events(noise, events, cfg.sample_rate, rng)
        effects.append(f"events:{len(events)}")
    target = None
    if cfg.reverb and rng.random() < cfg.reverb:
        if rooms is None:
            raise DenoiseError("reverb needs a RoomBank")
        room = int(rng.integers(rooms.count))
        speech, target = recording_effects.reverberate(speech, rooms.responses[room], cfg.sample_rate,
                                                       cfg.reverb_target)
        effects.append(f"room:{room}:rt60={rooms.info[room]['rt60']}")
    noisy, clean = mix_at_snr(speech, noise, snr, speech_dbfs=rng.uniform(*cfg.speech_dbfs), target=target)
    # the SNR of what was mixed (reverberant speech against noise), before any channel
    measured_snr = snr if target is not None else snr_db(clean, noisy - clean)
    if cfg.channel and rng.random() < cfg.channel:
        kind = recording_effects.CHANNELS[int(rng.integers(len(recording_effects.CHANNELS)))]
        response = recording_effects.channel_filter(kind, cfg.sample_rate, rng)
        noisy, clean = response(noisy), response(clean)  # the target keeps the channel's band
        effects.append(f"channel:{kind}")
    if cfg.clipping and rng.random() < cfg.clipping:
        noisy, threshold = recording_effects.clip(noisy, rng)  # the target stays unclipped
        effects.append(f"clip:{threshold:.3f}")
    top = max(np.max(np.abs(noisy)), 1e-12)
    if top > 0.95:  # filters can raise peaks
        noisy, clean = noisy * (0.95 / top), clean * (0.95 / top)
    row = {
        "id": f"{index:06d}",
        "snr_db": f"{measured_snr:.4f}",
        "speech_source": ";".join(dict.fromkeys(str(s) for s in sources)),
        "noise_source": noise_source,
    }
    if cfg.has_effects():
        row[EFFECTS_FIELD] = ";".join(effects)
    return noisy, clean, row


def make_dataset(clean_dirs, noise_dirs, out_dir, count: int, cfg: MixConfig,
                 progress: bool = True, jobs: int = 1, shard: tuple[int, int] | None = None) -> dict:
    """Write pairs and manifest.csv under out_dir; returns counts (written, resumed, bad files).

    ``jobs`` processes share the work (same bytes as one); ``shard=(K, N)`` writes only
    pairs K-1, K-1+N, ... and manifest.shard-K-of-N.csv, for merge_shards to join."""
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
        if cfg.balance_groups:
            speech = GroupedFiles.of(speech, cfg.group_regex)
        if cfg.balance_noise and noise:
            noise = GroupedFiles.by_source(noise, noise_dirs)
        splits[split] = (speech, noise)
    if cfg.dev_fraction > 0 and not splits["dev"][0]:
        raise DenoiseError("--dev-fraction left no speech group for dev; raise it or check --group-regex")

    for sub in ("noisy", "clean"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    fields = MANIFEST_FIELDS + ([EFFECTS_FIELD] if cfg.has_effects() else [])
    final = out / ("manifest.csv" if shard is None else f"manifest.shard-{shard[0]}-of-{shard[1]}.csv")
    partial = final.with_suffix(".partial.csv")
    done = {}
    for previous in (final, partial):  # a finished run, then an interrupted one
        if previous.exists():
            for row in manifest.read_rows(previous)[0]:
                if (out / row["noisy"]).exists() and (out / row["clean"]).exists():
                    done[row["id"]] = row
    rooms = (recording_effects.RoomBank(cfg.sample_rate, cfg.rooms, cfg.seed, cache_dir=out)
             if cfg.reverb else None)
    n_dev = int(round(count * cfg.dev_fraction))
    mine = range(count) if shard is None else range(shard[0] - 1, count, shard[1])
    todo = [i for i in mine if f"{i:06d}" not in done]
    bar = _progress(len(todo), progress, "mixing")
    context = dict(splits=splits, cfg=cfg, out=out, count=count, n_dev=n_dev, rooms=rooms)
    with manifest.Appender(partial, fields) as writer:
        for key in sorted(done):
            writer.write(done[key])
        if jobs > 1 and len(todo) > 1:
            import multiprocessing

            pool = multiprocessing.get_context("fork").Pool(jobs, _init_worker, (context,))
            rows = pool.imap(_write_example, todo, chunksize=4)
        else:
            pool = None
            _init_worker(context)
            rows = map(_write_example, todo)
        bad, low_rate = set(), set()
        try:
            for row, unreadable, below in rows:
                bad |= unreadable
                low_rate |= below
                writer.write(row)
                done[row["id"]] = row
                bar.update(1)
        finally:
            if pool is not None:
                pool.terminate()
    bar.close()
    manifest.write_rows(final, [done[k] for k in sorted(done)], fields)
    partial.unlink()
    return {"written": len(todo), "resumed": len(mine) - len(todo), "unreadable_files": sorted(bad),
            "low_rate_files": sorted(low_rate)}


_WORKER: dict = {}


def _init_worker(context: dict) -> None:
    """Per-process state: the splits, the config and each process's own source caches."""
    _WORKER.clear()
    _WORKER.update(context)
    cfg = context["cfg"]
    # the split is made on every file, so a set at 16 kHz holds out the same speakers as
    # one at 8 kHz from the same folders; speech below the rate is skipped when drawn
    _WORKER["speech_cache"] = SourceCache(cfg.sample_rate, trim=True,
                                          min_rate=0 if cfg.upsample_speech else cfg.sample_rate)
    _WORKER["noise_cache"] = SourceCache(context["cfg"].sample_rate, trim=False)


def _write_example(i: int) -> tuple[dict, set]:
    """Make pair i, write its two files and return its manifest row (in any process: the
    pair depends on (seed, i) alone, so --jobs N writes the same bytes as --jobs 1), with
    the unreadable source files met so far."""
    w = _WORKER
    cfg, out = w["cfg"], w["out"]
    split = cfg.only_split or ("dev" if i >= w["count"] - w["n_dev"] else "train")
    speech, noise = w["splits"][split]
    noisy, clean, row = make_example(i, speech, noise, cfg, w["speech_cache"], w["noise_cache"], w["rooms"])
    row.update(split=split, noisy=f"noisy/{row['id']}.wav", clean=f"clean/{row['id']}.wav")
    write_audio(out / row["noisy"], noisy, cfg.sample_rate, subtype="PCM_24")
    write_audio(out / row["clean"], clean, cfg.sample_rate, subtype="PCM_24")
    low = w["speech_cache"].low_rate
    return row, {str(p) for p in (w["speech_cache"].bad - low) | w["noise_cache"].bad}, {str(p) for p in low}


def merge_shards(out_dir) -> int:
    """Join the manifests of --shard K/N runs into manifest.csv; every shard must be
    finished. Returns the number of pairs."""
    out = Path(out_dir)
    shards = sorted(out.glob("manifest.shard-*-of-*.csv"))
    shards = [p for p in shards if not p.name.endswith(".partial.csv")]
    if not shards:
        raise DenoiseError(f"{out}: no finished shard manifests (manifest.shard-K-of-N.csv)")
    totals = {int(re.search(r"-of-(\d+)\.csv$", p.name).group(1)) for p in shards}
    if len(totals) != 1:
        raise DenoiseError(f"{out}: shard manifests of different splits ({sorted(totals)}); keep one N")
    n = totals.pop()
    have = {int(re.search(r"shard-(\d+)-of", p.name).group(1)) for p in shards}
    missing = sorted(set(range(1, n + 1)) - have)
    if missing:
        raise DenoiseError(f"{out}: shards {', '.join(map(str, missing))} of {n} are not finished")
    rows, fields = {}, None
    for p in shards:
        shard_rows, shard_fields = manifest.read_rows(p)
        fields = fields or shard_fields
        for row in shard_rows:
            rows[row["id"]] = row
    manifest.write_rows(out / manifest.NAME, [rows[k] for k in sorted(rows)], fields)
    return len(rows)


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
    p.add_argument("--clean", nargs="+", default=None, metavar="DIR", help="folders of clean speech (required)")
    p.add_argument("--noise", nargs="*", default=[], metavar="DIR",
                   help="folders of noise recordings (none: all noise is generated)")
    p.add_argument("-o", "--out", required=True, help="output folder (re-running resumes)")
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
    p.add_argument("--balance-speakers", action="store_true",
                   help="draw a speaker (a --group-regex group) first, then one of their files, so "
                        "corpora of many short clips from few speakers do not dominate (default: "
                        "every file equally likely)")
    p.add_argument("--reverb", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of pairs whose speech plays in a simulated room (pyroomacoustics "
                        "shoebox, RT60 0.1-1 s, source 0.3-4 m from the microphone; default 0)")
    p.add_argument("--reverb-target", choices=recording_effects.REVERB_TARGETS, default="early",
                   help="clean target of reverberant pairs: direct path + first 50 ms (early, "
                        "default), direct path alone (dry) or all of it (reverberant)")
    p.add_argument("--rooms", type=int, default=96, help="simulated rooms to draw from (default 96)")
    p.add_argument("--channel", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of pairs through a handset, headset, telephone-band or low-bit-rate "
                        "codec response (noisy and clean alike; default 0)")
    p.add_argument("--clipping", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of pairs whose noisy input clips (the loudest 0.5-5%% of samples; "
                        "the target stays unclipped; default 0)")
    p.add_argument("--noise-events", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of pairs with 1-4 short recorded noise events dropped in at random "
                        "onsets and levels (default 0)")
    p.add_argument("--upsample-speech", action="store_true",
                   help="also use clean speech recorded below --sample-rate (skipped by default: "
                        "upsampled, its empty upper band would be the target)")
    p.add_argument("--crowd", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of noises that are a crowd of 8-24 talkers from other training "
                        "speakers (canteens, stations; default 0)")
    p.add_argument("--balance-noise", action="store_true",
                   help="draw a noise source folder (the first level below each --noise folder) first, "
                        "then one of its files, so the corpus with most clips does not dominate")
    p.add_argument("--jobs", type=int, default=1, help="processes mixing in parallel (same bytes as 1)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="make only the K-th of N interleaved slices of the set (a cluster array job); "
                        "then run once with --merge-shards")
    p.add_argument("--merge-shards", action="store_true",
                   help="join finished --shard runs in --out into manifest.csv and exit")
    p.add_argument("--dev-fraction", type=float, default=0.0,
                   help="fraction of speech/noise groups held out for the dev split (default 0)")
    p.add_argument("--only-split", choices=["train", "dev"], default=None,
                   help="write only pairs of this split (e.g. a dev evaluation set at a fixed SNR)")
    p.add_argument("--group-regex", default=None,
                   help="regex on the file stem whose first group names the speaker "
                        "(default: the stem itself), e.g. '_([a-z]+)_' for FSDD; with several "
                        "alternatives (one per corpus) the first group that matched names it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.merge_shards:
        try:
            n = merge_shards(args.out)
        except DenoiseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{n} pairs from the shards -> {args.out}/manifest.csv")
        return 0
    if not args.clean:
        parser.error("--clean is required")
    shard = None
    if args.shard:
        m = re.fullmatch(r"(\d+)/(\d+)", args.shard)
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            print(f"error: --shard wants K/N with 1 <= K <= N, got {args.shard!r}", file=sys.stderr)
            return 2
        shard = (int(m.group(1)), int(m.group(2)))
    if args.jobs < 1 or args.rooms < 1:
        print("error: --jobs and --rooms must be at least 1", file=sys.stderr)
        return 2
    if not -20 <= args.snr_min <= args.snr_max:
        print("error: need -20 <= --snr-min <= --snr-max", file=sys.stderr)
        return 2
    fractions = (args.colour_speech, args.second_noise, args.generated_noise, args.noise_speed,
                 args.reverb, args.channel, args.clipping, args.noise_events, args.crowd)
    if not all(0 <= v <= 1 for v in fractions):
        print("error: --colour-speech, --second-noise, --generated-noise, --noise-speed, --reverb, "
              "--channel, --clipping, --noise-events and --crowd are fractions in [0, 1]",
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
                    more_noise_kinds=args.more_noise_kinds, noise_speed=args.noise_speed,
                    balance_groups=args.balance_speakers, reverb=args.reverb,
                    reverb_target=args.reverb_target, rooms=args.rooms, channel=args.channel,
                    clipping=args.clipping, noise_events=args.noise_events,
                    upsample_speech=args.upsample_speech, crowd=args.crowd,
                    balance_noise=args.balance_noise)
    try:
        result = make_dataset(args.clean, args.noise, args.out, args.count, cfg,
                              progress=not args.quiet, jobs=args.jobs, shard=shard)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result['written']} pairs written, {result['resumed']} already present, "
          f"{len(result['unreadable_files'])} unreadable files skipped -> {args.out}/"
          + ("manifest.csv" if shard is None else f"manifest.shard-{shard[0]}-of-{shard[1]}.csv "
             f"(join the shards with --merge-shards)"))
    for path in result["unreadable_files"][:10]:
        print(f"  skipped: {path}", file=sys.stderr)
    if result["low_rate_files"]:
        print(f"{len(result['low_rate_files'])} clean files recorded below {args.sample_rate} Hz "
              f"skipped (--upsample-speech keeps them), e.g. {result['low_rate_files'][0]}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
