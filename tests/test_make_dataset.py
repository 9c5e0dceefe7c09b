import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from runtime.audio_io import read_audio
from training.make_dataset import MixConfig, main, make_dataset
from training.mixing import mic_colouring, mix_at_snr, snr_db, trim_silence

from .conftest import SHARED_DATA, needs_shared


def _rows(out):
    with open(Path(out) / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _measured_snr(out, row):
    noisy, _ = read_audio(Path(out) / row["noisy"])
    clean, _ = read_audio(Path(out) / row["clean"])
    return snr_db(clean, noisy - clean)


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_mix_hits_the_requested_snr_and_never_clips(rng):
    speech = rng.standard_normal(8000)
    noise = rng.standard_normal(8000) * 5
    for snr in (0.0, 7.5, 40.0):
        noisy, clean = mix_at_snr(speech, noise, snr, speech_dbfs=-3)
        assert np.max(np.abs(noisy)) <= 0.95 + 1e-12
        assert snr_db(clean, noisy - clean) == pytest.approx(snr, abs=1e-9)


def test_trim_silence_drops_leading_and_trailing_quiet(rng):
    tone = np.sin(np.arange(8000) * 0.3)
    x = np.concatenate([1e-4 * rng.standard_normal(4000), tone, np.zeros(6000)])
    y = trim_silence(x, 8000)
    assert 7800 <= len(y) <= 8400


def test_mic_colouring_removes_rumble_and_keeps_the_signal_finite(rng):
    rate, n = 8000, 16000
    t = np.arange(n) / rate
    rumble, voice = np.sin(2 * np.pi * 20 * t), np.sin(2 * np.pi * 1000 * t)
    for _ in range(5):
        out_rumble = mic_colouring(rumble, rate, rng)
        out_voice = mic_colouring(voice, rate, rng)
        assert np.isfinite(out_voice).all() and len(out_voice) == n
        # 20 Hz is below every high-pass corner (40-300 Hz); at 1 kHz the tilt is 0 dB, the
        # high-pass costs < 0.4 dB and the bell is at most +-8 dB
        assert np.std(out_rumble) < 0.3 * np.std(rumble)
        assert 10 ** (-9 / 20) < np.std(out_voice) / np.std(voice) < 10 ** (9 / 20)


def test_colouring_and_second_noise_are_recorded_and_keep_the_snr(tiny_corpus, tmp_path):
    cfg = MixConfig(seconds=1.0, seed=3, snr_min=0, snr_max=20, generated_noise=0.5,
                    colour_speech=1.0, second_noise=1.0)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "on", 8, cfg, progress=False)
    rows = _rows(tmp_path / "on")
    assert all("+" in r["noise_source"] for r in rows)  # two sources named in every row
    for row in rows:
        assert _measured_snr(tmp_path / "on", row) == pytest.approx(float(row["snr_db"]), abs=0.1)
        assert 0 <= float(row["snr_db"]) <= 20
    # colouring draws after everything else: the same speech, noise and SNR as without it
    plain = MixConfig(seconds=1.0, seed=3, snr_min=0, snr_max=20, generated_noise=0.5)
    coloured = MixConfig(seconds=1.0, seed=3, snr_min=0, snr_max=20, generated_noise=0.5, colour_speech=1.0)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "a", 4, plain, progress=False)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "b", 4, coloured, progress=False)
    for a, b in zip(_rows(tmp_path / "a"), _rows(tmp_path / "b")):
        assert (a["speech_source"], a["noise_source"]) == (b["speech_source"], b["noise_source"])
        assert float(a["snr_db"]) == pytest.approx(float(b["snr_db"]), abs=0.01)
    assert _digest(tmp_path / "a" / "clean") != _digest(tmp_path / "b" / "clean")


def test_speech_level_range_is_respected(tiny_corpus, tmp_path):
    cfg = MixConfig(seconds=1.0, seed=8, snr_min=10, snr_max=20, speech_dbfs=(-52.0, -48.0))
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path, 6, cfg, progress=False)
    for row in _rows(tmp_path):
        clean, _ = read_audio(tmp_path / row["clean"])
        level = 10 * np.log10(np.mean(clean ** 2))
        assert -52.1 <= level <= -47.9  # quiet enough that the clip guard never scales it


def test_dataset_snr_matches_manifest_and_layout(tiny_corpus, tmp_path):
    cfg = MixConfig(sample_rate=8000, snr_min=0, snr_max=40, seconds=1.5, seed=1, generated_noise=0.4)
    result = make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path, 12, cfg,
                          progress=False)
    rows = _rows(tmp_path)
    assert result["written"] == 12 and len(rows) == 12
    kinds = {r["noise_source"].split(":")[0] for r in rows}
    assert "generated" in kinds and len(kinds) > 1
    for row in rows:
        snr = float(row["snr_db"])
        assert 0 <= snr <= 40
        assert _measured_snr(tmp_path, row) == pytest.approx(snr, abs=0.1)
        audio, rate = read_audio(tmp_path / row["noisy"])
        assert rate == 8000 and len(audio) == 12000


def test_same_seed_gives_identical_bytes_and_rerun_resumes(tiny_corpus, tmp_path):
    cfg = MixConfig(seconds=1.0, seed=5, generated_noise=0.5)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "a", 6, cfg, progress=False)
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "b", 6, cfg, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    # interrupt: drop two pairs, rerun, same bytes and only the missing ones redone
    (tmp_path / "b" / "noisy" / "000004.wav").unlink()
    (tmp_path / "b" / "clean" / "000005.wav").unlink()
    again = make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "b", 6, cfg,
                         progress=False)
    assert again["written"] == 2 and again["resumed"] == 4
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    other = make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path / "c", 6,
                         MixConfig(seconds=1.0, seed=6, generated_noise=0.5), progress=False)
    assert other["written"] == 6 and _digest(tmp_path / "c") != _digest(tmp_path / "a")


def test_unreadable_files_are_skipped_and_counted(tiny_corpus, tmp_path):
    speech = tmp_path / "speech"
    speech.mkdir()
    for p in (tiny_corpus / "speech" / "alice").iterdir():
        (speech / p.name).write_bytes(p.read_bytes())
    (speech / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (speech / "empty.flac").write_bytes(b"")
    result = make_dataset([speech], [tiny_corpus / "noise"], tmp_path / "out", 8,
                          MixConfig(seconds=1.0, seed=2), progress=False)
    assert len(_rows(tmp_path / "out")) == 8
    assert sorted(Path(p).name for p in result["unreadable_files"]) == ["broken.wav", "empty.flac"]


def test_dev_split_holds_out_whole_speakers(tiny_corpus, tmp_path):
    cfg = MixConfig(seconds=1.0, seed=4, dev_fraction=0.34, group_regex="^([a-z]+)_")
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], tmp_path, 12, cfg, progress=False)
    rows = _rows(tmp_path)
    speakers = {split: {Path(s).parent.name for r in rows if r["split"] == split
                        for s in r["speech_source"].split(";")} for split in ("train", "dev")}
    assert speakers["dev"] and speakers["train"] and not speakers["dev"] & speakers["train"]


def test_cli_help_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--snr-min" in capsys.readouterr().out
    assert main(["--clean", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    assert "no audio files" in capsys.readouterr().err
    assert main(["--clean", str(tmp_path), "--out", str(tmp_path / "o"), "--snr-min", "30",
                 "--snr-max", "10"]) == 2
    assert main(["--clean", str(tmp_path), "--out", str(tmp_path / "o"), "--colour-speech", "1.5"]) == 2
    assert "fractions in [0, 1]" in capsys.readouterr().err
    assert main(["--clean", str(tmp_path), "--out", str(tmp_path / "o"), "--speech-dbfs", "-10", "-30"]) == 2
    assert "--speech-dbfs" in capsys.readouterr().err


@needs_shared("speech_8k", "dns_librivox")
@needs_shared("noise_16k", "speech_commands")
def test_shared_corpora_snr_and_determinism(tmp_path):
    clean = [SHARED_DATA / "speech_8k" / "dns_librivox"]
    noise = [SHARED_DATA / "noise_16k" / "speech_commands"]
    cfg = MixConfig(sample_rate=8000, seconds=2.0, seed=11)
    make_dataset(clean, noise, tmp_path / "a", 10, cfg, progress=False)
    make_dataset(clean, noise, tmp_path / "b", 10, cfg, progress=False)
    for row in _rows(tmp_path / "a"):
        assert _measured_snr(tmp_path / "a", row) == pytest.approx(float(row["snr_db"]), abs=0.1)
        assert sf.info(str(tmp_path / "a" / row["noisy"])).samplerate == 8000
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_speech_recorded_below_the_output_rate_is_skipped_unless_asked(tiny_corpus, tmp_path):
    """Upsampled 8 kHz speech would make an empty 4-8 kHz band the target of a 16 kHz set;
    the split is still made on every file, so both rates hold out the same speakers."""
    import soundfile as sf

    speech = tmp_path / "speech"
    speech.mkdir()
    for p in (tiny_corpus / "speech" / "alice").iterdir():
        (speech / p.name).write_bytes(p.read_bytes())
    audio, rate = sf.read(str(speech / "alice_0.flac"))
    sf.write(speech / "dave_0.wav", audio[::2], rate // 2)  # an 8 kHz recording
    cfg = MixConfig(sample_rate=16000, seconds=1.0, seed=2)
    result = make_dataset([speech], [tiny_corpus / "noise"], tmp_path / "out", 8, cfg, progress=False)
    assert [Path(p).name for p in result["low_rate_files"]] == ["dave_0.wav"]
    assert not result["unreadable_files"]
    assert all("dave" not in r["speech_source"] for r in _rows(tmp_path / "out"))
    cfg.upsample_speech = True
    kept = make_dataset([speech], [tiny_corpus / "noise"], tmp_path / "up", 8, cfg, progress=False)
    assert not kept["low_rate_files"]
    assert any("dave" in r["speech_source"] for r in _rows(tmp_path / "up"))


def test_every_command_names_its_output_with_o_or_out():
    """-o/--out is the output flag of every command (runtime.denoise keeps --output too);
    the TensorFlow-free ones here, the training ones in test_train."""
    from benchmarks import device_report
    from runtime import cli
    from training import make_dataset as md

    def parsers():
        yield md.build_parser(), ["--clean", "c"]
        yield cli.build_parser(), ["IN"]
        yield device_report.build_parser(), ["--device-json", "d.json", "--threads", "1", "m=log"]

    for parser, rest in parsers():
        for flag in ("-o", "--out"):
            args = parser.parse_args([*rest, flag, "target"])
            assert "target" in vars(args).values(), parser.prog
