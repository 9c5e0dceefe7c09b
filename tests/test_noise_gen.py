import numpy as np
import pytest

from training import noise_gen
from training.make_dataset import MixConfig, make_dataset

from .test_make_dataset import _measured_snr, _rows

RATE = 8000


def _flatness(x):
    """Spectral flatness of the long-term spectrum: 1 for white noise, near 0 for tones."""
    p = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2 + 1e-20
    return float(np.exp(np.mean(np.log(p))) / np.mean(p))


@pytest.mark.parametrize("kind", noise_gen.KINDS + noise_gen.EXTRA_KINDS)
def test_every_kind_is_finite_audible_and_the_right_length(kind):
    rng = np.random.default_rng(4)
    speech = [rng.standard_normal(RATE)] * 3
    x = noise_gen.generate(kind, 3 * RATE, RATE, rng, speech)
    assert x.shape == (3 * RATE,) and np.isfinite(x).all()
    assert np.sqrt(np.mean(x ** 2)) > 1e-3


def test_music_and_tonal_are_peaky_and_modulated_noise_swells():
    rng = np.random.default_rng(1)
    white = _flatness(rng.standard_normal(4 * RATE))
    for seed in range(4):
        r = np.random.default_rng(seed)
        assert _flatness(noise_gen.music(4 * RATE, RATE, r)) < 0.1 * white
        assert _flatness(noise_gen.tonal(4 * RATE, RATE, r)) < 0.1 * white
        mod = noise_gen.modulated(8 * RATE, RATE, r)
        level = 10 * np.log10(np.mean(mod[: 8 * RATE // 400 * 400].reshape(-1, 400) ** 2, axis=1))
        assert np.percentile(level, 95) - np.percentile(level, 5) > 3  # a swell, not steady noise


def test_speed_change_moves_a_tone_and_removes_what_would_alias():
    t = np.arange(2 * RATE) / RATE
    tone = np.sin(2 * np.pi * 500 * t)
    for factor in (0.7, 1.3):
        y = noise_gen.speed_change(tone, factor)
        assert len(y) == pytest.approx(len(tone) / factor, abs=1)
        f = np.fft.rfftfreq(len(y), 1 / RATE)[np.argmax(np.abs(np.fft.rfft(y)))]
        assert f == pytest.approx(500 * factor, abs=2)
    high = np.sin(2 * np.pi * 3500 * t)  # 4550 Hz after 1.3x: above Nyquist, must vanish
    assert np.std(noise_gen.speed_change(high, 1.3)) < 0.01


def test_new_kinds_and_speed_are_opt_in_recorded_and_keep_the_snr(tiny_corpus, tmp_path):
    base = dict(seconds=1.0, seed=9, snr_min=0, snr_max=20)
    cfg = MixConfig(**base, generated_noise=1.0, more_noise_kinds=True)
    make_dataset([tiny_corpus / "speech"], [], tmp_path / "kinds", 24, cfg, progress=False)
    kinds = {r["noise_source"] for r in _rows(tmp_path / "kinds")}
    assert kinds & {f"generated:{k}" for k in noise_gen.EXTRA_KINDS}
    cfg = MixConfig(**base, noise_speed=1.0)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "speed", 6, cfg, progress=False)
    for row in _rows(tmp_path / "speed"):
        factor = float(row["noise_source"].rsplit("@", 1)[1].rstrip("x"))
        assert 0.7 <= factor <= 1.4
        assert _measured_snr(tmp_path / "speed", row) == pytest.approx(float(row["snr_db"]), abs=0.1)
    plain = MixConfig(**base, generated_noise=1.0)
    make_dataset([tiny_corpus / "speech"], [], tmp_path / "plain", 24, plain, progress=False)
    assert all(r["noise_source"].split(":")[1] in noise_gen.KINDS for r in _rows(tmp_path / "plain"))


def _envelope_spread_db(x, frame=400):
    level = 10 * np.log10(np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1) + 1e-20)
    return float(np.percentile(level, 90) - np.percentile(level, 10))


def test_a_crowd_is_steadier_than_few_talkers_and_opt_in(tiny_corpus, tmp_path):
    from .conftest import speech_like

    rng = np.random.default_rng(2)
    talkers = [speech_like(RATE, 3.0, rng) for _ in range(16)]
    crowd = noise_gen.crowd(3 * RATE, RATE, talkers, np.random.default_rng(3))
    few = noise_gen.babble(3 * RATE, talkers[:2], np.random.default_rng(3))
    assert crowd.shape == (3 * RATE,) and np.isfinite(crowd).all()
    # many voices fill each other's pauses: the level moves much less than with two
    assert _envelope_spread_db(crowd) < 0.6 * _envelope_spread_db(few)

    base = dict(seconds=1.0, seed=4, snr_min=0, snr_max=20)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "crowd", 8,
                 MixConfig(**base, crowd=1.0), progress=False)
    rows = _rows(tmp_path / "crowd")
    assert all(r["noise_source"].startswith("generated:crowd") for r in rows)
    for row in rows:
        assert _measured_snr(tmp_path / "crowd", row) == pytest.approx(float(row["snr_db"]), abs=0.1)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "plain", 8,
                 MixConfig(**base), progress=False)
    assert not any("crowd" in r["noise_source"] for r in _rows(tmp_path / "plain"))


def test_balance_noise_draws_each_source_folder_alike(tmp_path):
    import soundfile as sf

    from .conftest import speech_like

    rng = np.random.default_rng(5)
    (tmp_path / "speech" / "a").mkdir(parents=True)
    sf.write(tmp_path / "speech" / "a" / "a.wav", speech_like(RATE, 3.0, rng), RATE)
    for folder, files in (("big_corpus", 12), ("ambience", 1)):
        for i in range(files):
            path = tmp_path / "noise" / folder / "nested" / f"{folder}_{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.1 * rng.standard_normal(2 * RATE), RATE)
    counts = {}
    for balance in (False, True):
        out = tmp_path / f"mix_{balance}"
        make_dataset([tmp_path / "speech"], [tmp_path / "noise"], out, 60,
                     MixConfig(seconds=0.5, seed=1, balance_noise=balance), progress=False)
        counts[balance] = sum("ambience" in r["noise_source"] for r in _rows(out))
    assert counts[False] < 15  # 1 file in 13
    assert 18 <= counts[True] <= 42  # one folder in two
