"""Rooms, channels, clipping and noise events in dataset creation; parallel and sharded builds."""
import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from runtime.audio_io import read_audio
from training import recording_effects as fx
from training.make_dataset import GroupedFiles, MixConfig, group_of, main, make_dataset

from .conftest import needs_effects
from .test_make_dataset import _digest, _rows


def _band_energy(x, rate, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return spec[(f >= lo) & (f < hi)].sum()


def test_group_regex_alternatives_name_each_corpus_speaker():
    regex = r"^([0-9]+)-[0-9]+-[0-9]+$|^0([0-9]{4})[0-9]{4}$|_([a-z]+)_"
    assert group_of(Path("103-1240-0000.flac"), regex) == "103"
    assert group_of(Path("000010011.WAV"), regex) == "0001"
    assert group_of(Path("0_george_3.flac"), regex) == "george"
    assert group_of(Path("spk008.flac"), regex) == "spk008"  # no match: the stem


def test_balanced_picks_draw_speakers_not_files(tiny_corpus, tmp_path):
    """One speaker with many clips and two with one each: by file the big one dominates,
    balanced each speaker gets about a third."""
    folder = tmp_path / "speech"
    rng = np.random.default_rng(0)
    for name, n in (("big", 30), ("one", 1), ("two", 1)):
        for i in range(n):
            path = folder / f"{name}_{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.1 * rng.standard_normal(8000 * 5), 8000)
    counts = {}
    for balanced in (False, True):
        out = tmp_path / f"mix{balanced}"
        cfg = MixConfig(sample_rate=8000, seconds=1.0, seed=1, group_regex="^([a-z]+)_",
                        balance_groups=balanced, snr_min=5, snr_max=5)
        make_dataset([folder], [tiny_corpus / "noise"], out, 60, cfg, progress=False)
        counts[balanced] = sum(Path(r["speech_source"]).stem.startswith("big") for r in _rows(out))
    assert counts[False] > 50 and 10 <= counts[True] <= 32
    groups = GroupedFiles.of(sorted(folder.glob("*.wav")), "^([a-z]+)_")
    assert [len(g) for g in groups] == [30, 1, 1] and len(groups.flat()) == 32


@needs_effects
def test_room_bank_is_deterministic_cached_and_within_its_rt60(tmp_path):
    bank = fx.RoomBank(8000, count=4, seed=3, rt60=(0.2, 0.6), cache_dir=tmp_path)
    again = fx.RoomBank(8000, count=4, seed=3, rt60=(0.2, 0.6), cache_dir=tmp_path)  # from the cache
    fresh = fx.RoomBank(8000, count=4, seed=3, rt60=(0.2, 0.6))
    assert len(list(tmp_path.glob("rooms_*.npz"))) == 1
    for a, b, c, info in zip(bank.responses, again.responses, fresh.responses, bank.info):
        assert np.array_equal(a, b) and np.array_equal(a, c)
        assert 0.2 <= info["rt60"] <= 0.6 and 0.3 <= info["distance"] <= 4.0
        assert int(np.argmax(np.abs(a))) <= 8  # the direct path leads: pairs stay aligned


@needs_effects
@pytest.mark.parametrize("target", fx.REVERB_TARGETS)
def test_reverb_targets_are_aligned_and_ring_on_as_they_should(target, rng):
    """A burst that stops half-way: the microphone hears the room ring on after it; the
    early target stops within 50 ms, the dry one at once, the reverberant one rings on."""
    rate = 8000
    bank = fx.RoomBank(rate, count=1, seed=1, rt60=(0.8, 0.9))
    speech = np.concatenate([rng.standard_normal(rate // 2), np.zeros(rate // 2)])
    wet, clean = fx.reverberate(speech, bank.responses[0], rate, target)
    assert wet.shape == clean.shape == speech.shape
    corr = np.correlate(clean, speech, "full")
    assert abs(int(np.argmax(corr)) - (len(speech) - 1)) <= 8
    after = slice(rate // 2 + int(0.06 * rate), None)  # from 60 ms after the burst ends
    ring_wet = np.sum(wet[after] ** 2) / np.sum(wet ** 2)
    ring_clean = np.sum(clean[after] ** 2) / np.sum(clean ** 2)
    assert ring_wet > 1e-3
    if target == "reverberant":
        assert np.array_equal(wet, clean)
    else:
        assert ring_clean < 1e-9


@needs_effects
@pytest.mark.parametrize("kind", fx.CHANNELS)
def test_channel_responses_limit_the_band_like_their_device(kind, rng):
    rate = 8000
    x = rng.standard_normal(rate * 2)
    y = fx.channel_filter(kind, rate, np.random.default_rng(5))(x)
    assert y.shape == x.shape and np.isfinite(y).all()
    if kind in ("handset", "telephone"):  # no rumble below 150 Hz
        assert _band_energy(y, rate, 0, 150) < 0.1 * _band_energy(x, rate, 0, 150)
    if kind in ("handset", "telephone", "codec"):  # little above 3.7 kHz
        assert _band_energy(y, rate, 3700, 4000) < 0.2 * _band_energy(x, rate, 3700, 4000)
    # the same draw gives the same filter
    again = fx.channel_filter(kind, rate, np.random.default_rng(5))(x)
    assert np.array_equal(y, again)


def test_clipping_flattens_the_peaks_only(rng):
    x = rng.standard_normal(8000)
    y, threshold = fx.clip(x, rng)
    assert np.max(np.abs(y)) == pytest.approx(threshold)
    assert 0.004 <= np.mean(np.abs(x) > threshold) <= 0.051
    assert np.array_equal(y[np.abs(x) <= threshold], x[np.abs(x) <= threshold])


def test_noise_events_add_bursts_at_the_noise_level(rng):
    rate = 8000
    noise = 0.01 * rng.standard_normal(rate * 4)
    event = np.sin(np.arange(rate * 2) * 0.5)
    out = fx.noise_events(noise, [event, event], rate, rng)
    added = out - noise
    assert np.count_nonzero(added) > 0.2 * rate / 2  # at least a short burst
    assert 10 * np.log10(np.mean(added[added != 0] ** 2) / np.mean(noise ** 2)) == pytest.approx(0, abs=8)


def _effects_args(corpus, out, *extra):
    return ["--clean", str(corpus / "speech"), "--noise", str(corpus / "noise"), "--out", str(out),
            "--count", "12", "--seconds", "1", "--snr-min", "-5", "--snr-max", "20", "--seed", "4",
            "--reverb", "0.5", "--rooms", "3", "--channel", "0.5", "--clipping", "0.3",
            "--noise-events", "0.5", "--dev-fraction", "0.34", "--group-regex", "^([a-z]+)_",
            "--quiet", *extra]


@needs_effects
def test_effects_are_recorded_and_jobs_and_shards_write_the_same_bytes(tiny_corpus, tmp_path):
    one, two, sharded = tmp_path / "one", tmp_path / "two", tmp_path / "sharded"
    assert main(_effects_args(tiny_corpus, one)) == 0
    rows = _rows(one)
    effects = ";".join(r["effects"] for r in rows)
    for name in ("room:", "channel:", "clip:", "events:"):
        assert name in effects
    assert min(float(r["snr_db"]) for r in rows) >= -5.01
    for r in rows:
        noisy, _ = read_audio(one / r["noisy"])
        assert np.max(np.abs(noisy)) <= 0.95 + 1e-4
    assert main(_effects_args(tiny_corpus, two, "--jobs", "2")) == 0
    assert _digest(one) == _digest(two)
    assert main(_effects_args(tiny_corpus, sharded, "--shard", "1/2")) == 0
    assert main(["--out", str(sharded), "--merge-shards"]) == 1  # shard 2 missing
    assert main(_effects_args(tiny_corpus, sharded, "--shard", "2/2")) == 0
    assert main(["--out", str(sharded), "--merge-shards"]) == 0
    assert (sharded / "manifest.csv").read_bytes() == (one / "manifest.csv").read_bytes()
    for r in rows:
        assert (sharded / r["noisy"]).read_bytes() == (one / r["noisy"]).read_bytes()
    assert main(_effects_args(tiny_corpus, tmp_path / "bad", "--shard", "3/2")) == 2


def test_sets_without_effects_keep_the_old_manifest_columns(tiny_corpus, tmp_path):
    cfg = MixConfig(sample_rate=8000, seconds=1.0, seed=2)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path, 3, cfg, progress=False)
    with open(tmp_path / "manifest.csv", newline="") as f:
        assert "effects" not in next(csv.reader(f))
