"""Files of any length in constant memory: same output as the in-memory path, clean failures."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from runtime.errors import AudioError
from runtime.example_audio import noisy_example
from runtime.file_stream import denoise_file, scan_audio
from runtime.offline import denoise
from runtime.stream import StreamDenoiser

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 6000])
@pytest.mark.parametrize("high_band", ["gain", "drop"])
def test_blockwise_file_equals_the_in_memory_path(rate, high_band, tmp_path):
    """Equal within 1e-6 at every rate (measured: bit for bit, as soxr's stream equals its
    one-shot resampling), for blocks that do not divide the hop or the file."""
    x, _ = noisy_example(rate, 3.3, seed=4)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x, rate, subtype="DOUBLE")
    report = denoise_file(src, dst, high_band=high_band, subtype="DOUBLE", block_seconds=0.37)
    y, out_rate = sf.read(dst)
    expected = denoise(sf.read(src)[0], rate, high_band=high_band)
    assert out_rate == rate and y.shape == expected.shape
    assert np.max(np.abs(y - expected)) < 1e-6
    assert report["seconds"] == pytest.approx(len(x) / rate)
    assert not list(tmp_path.glob(".*partial*"))


def test_blockwise_file_equals_the_in_memory_path_for_a_model_that_looks_ahead(stored_models, tmp_path):
    """A model a hop later (lookahead): its latency is dropped and the band above its
    Nyquist carried over the same way in both paths."""
    x, _ = noisy_example(16000, 2.1, seed=5)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x, 16000, subtype="DOUBLE")
    model = str(stored_models[("crnn-lookahead", "int8")])
    denoise_file(src, dst, model, subtype="DOUBLE", block_seconds=0.29)
    y, _ = sf.read(dst)
    expected = denoise(sf.read(src)[0], 16000, model)
    assert y.shape == expected.shape and np.max(np.abs(y - expected)) < 1e-6


def _rss_script(path, out):
    return textwrap.dedent(f"""
        import resource, numpy as np
        from runtime.file_stream import denoise_file
        from runtime.offline import denoise
        from runtime.stream import StreamDenoiser
        sd = StreamDenoiser()
        denoise(np.zeros(16000), 16000, sd)  # warm up: model, FFT plans, resampler code
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        denoise_file({str(path)!r}, {str(out)!r}, sd)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) / 1024)
    """)


@pytest.mark.long
def test_memory_added_does_not_grow_with_the_file(tmp_path):
    """Peak resident memory added by denoising a 16 kHz file (resampled, high band kept):
    the same bound for 1 and 6 minutes; the in-memory path adds 589 MB for 6 (measured)."""
    added = {}
    for minutes in (1, 6):
        src = tmp_path / f"{minutes}.wav"
        with sf.SoundFile(src, "w", 16000, 1, "PCM_16") as f:
            for i in range(minutes * 6):
                f.write(noisy_example(16000, 10.0, seed=i)[0])
        res = subprocess.run([sys.executable, "-c", _rss_script(src, tmp_path / f"o{minutes}.wav")],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        added[minutes] = float(res.stdout.strip().splitlines()[-1])
        assert sf.info(str(tmp_path / f"o{minutes}.wav")).frames == minutes * 60 * 16000
    assert added[1] < 40 and added[6] < 40, added


def _write_with_nan_at(path, rate, seconds, at_seconds):
    x = noisy_example(rate, seconds)[0]
    x[int(at_seconds * rate)] = np.nan
    sf.write(path, x, rate, subtype="FLOAT")


def test_bad_samples_mid_file_name_the_time_and_leave_no_output(tmp_path):
    src, dst = tmp_path / "bad.wav", tmp_path / "out.wav"
    _write_with_nan_at(src, 8000, 30.0, 21.5)
    with pytest.raises(AudioError, match=r"bad\.wav: NaN or Inf samples at 21\.50 s"):
        denoise_file(src, dst, block_seconds=1.0)
    assert not dst.exists() and not list(tmp_path.glob(".*partial*"))
    with pytest.raises(AudioError, match="21.50 s"):
        scan_audio(src)


def test_an_interrupted_run_leaves_no_file_under_the_output_name(tmp_path, monkeypatch):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, noisy_example(8000, 20.0)[0], 8000)
    sd = StreamDenoiser()
    calls = {"n": 0}
    real = sd.process

    def interrupted(chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(chunk)

    monkeypatch.setattr(sd, "process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        denoise_file(src, dst, sd, block_seconds=1.0)
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_a_truncated_file_gets_a_warning_naming_it(tmp_path):
    src = tmp_path / "cut.wav"
    sf.write(src, noisy_example(8000, 4.0)[0], 8000, subtype="PCM_16")
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])  # the header still promises 4 s
    with pytest.warns(UserWarning, match="cut.wav: truncated"):
        denoise_file(src, tmp_path / "out.wav")
    assert 1.9 < sf.info(str(tmp_path / "out.wav")).duration < 2.1


def test_cli_shows_progress_in_seconds_of_audio_for_long_files(tmp_path, capsys):
    from runtime.cli import main

    src = tmp_path / "long.wav"
    sf.write(src, noisy_example(8000, 65.0)[0], 8000)
    assert main([str(src), "-o", str(tmp_path / "o.wav"), "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "s of audio" in err and "x real time" in err
    assert main([str(src), "-o", str(tmp_path / "o2.wav"), "--no-progress"]) == 0
    assert "s of audio" not in capsys.readouterr().err


def test_file_rate_gives_the_stated_rate_and_a_clear_error(tmp_path):
    """The rate the bundled model is picked by, for wav/flac and mp3 alike."""
    from runtime.file_stream import file_rate

    sf.write(tmp_path / "x.flac", np.zeros(4410), 44100)
    assert file_rate(tmp_path / "x.flac") == 44100
    with pytest.raises(AudioError, match="cannot read audio"):
        file_rate(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not a wave")
    with pytest.raises(AudioError, match="bad.wav"):
        file_rate(tmp_path / "bad.wav")
    pytest.importorskip("librosa")
    try:
        sf.write(tmp_path / "x.mp3", np.zeros(16000), 16000, format="MP3")
    except Exception:
        pytest.skip("this libsndfile cannot write MP3")
    assert file_rate(tmp_path / "x.mp3") == 16000
