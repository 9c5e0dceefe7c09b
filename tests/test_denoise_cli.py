"""python -m runtime.denoise: files and folders in, same format out; bad input never writes."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "runtime.denoise", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def model(stored_models):
    return stored_models[("crnn", "int8")]


def test_file_in_file_out_keeps_format_rate_and_length(model, tmp_path, rng):
    src = tmp_path / "in.flac"
    sf.write(src, rng.standard_normal(16000) * 0.1, 16000, subtype="PCM_16")
    res = cli(src, "-o", tmp_path / "out.flac", "--model", model, "--verbose")
    assert res.returncode == 0, res.stderr
    info = sf.info(str(tmp_path / "out.flac"))
    assert (info.samplerate, info.frames, info.subtype) == (16000, 16000, "PCM_16")
    assert "interpreter: ai_edge_litert" in res.stderr
    assert "post-filter: wiener" in res.stderr


def test_postfilter_none_plays_the_model_alone(model, tmp_path, rng):
    """On steady noise the default Wiener post-filter removes more than the model alone does."""
    src = tmp_path / "noise.wav"
    sf.write(src, rng.standard_normal(8000 * 3) * 0.05, 8000)
    energy = {}
    for mode in ("wiener", "none"):
        res = cli(src, "-o", tmp_path / f"{mode}.wav", "--model", model, "--postfilter", mode)
        assert res.returncode == 0, res.stderr
        y, _ = sf.read(str(tmp_path / f"{mode}.wav"))
        energy[mode] = float(np.sum(y[8000 * 2:] ** 2))
    assert energy["wiener"] < 0.5 * energy["none"]
    assert cli(src, "-o", tmp_path / "x.wav", "--postfilter", "spectral").returncode == 2


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed (the [fast] extra)")
def test_compiled_frame_path_writes_the_same_audio(model, tmp_path, rng):
    src = tmp_path / "in.wav"
    sf.write(src, rng.standard_normal(8000 * 2) * 0.1, 8000, subtype="FLOAT")
    outputs = []
    for flags in ((), ("--compiled",)):
        out = tmp_path / f"out{len(flags)}.wav"
        res = cli(src, "-o", out, "--model", model, "--verbose", *flags)
        assert res.returncode == 0, res.stderr
        assert f"frame path: {'compiled' if flags else 'numpy'}" in res.stderr
        outputs.append(sf.read(out)[0])
    assert np.max(np.abs(outputs[0] - outputs[1])) < 1e-6


def test_high_band_drop_returns_band_limited_audio(model, tmp_path, rng):
    src = tmp_path / "in.wav"
    sf.write(src, rng.standard_normal(16000) * 0.1, 16000)
    energies = {}
    for mode in ("gain", "drop"):
        res = cli(src, "-o", tmp_path / f"{mode}.wav", "--model", model, "--high-band", mode)
        assert res.returncode == 0, res.stderr
        y, _ = sf.read(str(tmp_path / f"{mode}.wav"))
        spectrum = np.abs(np.fft.rfft(y)) ** 2
        energies[mode] = spectrum[np.fft.rfftfreq(len(y), 1 / 16000) > 4400].sum()
    assert energies["drop"] < 1e-3 * energies["gain"]


def test_folder_in_folder_out(model, tmp_path, rng):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("a.wav", "sub/b.wav"):
        sf.write(tmp_path / "in" / name, rng.standard_normal(4000) * 0.1, 8000)
    res = cli(tmp_path / "in", "-o", tmp_path / "out", "--model", model)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "a.wav").is_file() and (tmp_path / "out" / "sub" / "b.wav").is_file()


def test_stereo_is_downmixed_with_a_warning(model, tmp_path, rng):
    sf.write(tmp_path / "st.wav", rng.standard_normal((4000, 2)) * 0.1, 8000)
    res = cli(tmp_path / "st.wav", "-o", tmp_path / "o.wav", "--model", model)
    assert res.returncode == 0 and "downmixed" in res.stderr
    assert sf.info(str(tmp_path / "o.wav")).channels == 1


@pytest.mark.parametrize("case", ["nan", "empty", "corrupt", "missing"])
def test_bad_input_is_one_line_error_and_nothing_is_written(case, model, tmp_path):
    src = tmp_path / "bad.wav"
    if case == "nan":
        sf.write(src, np.array([0.1, np.nan, 0.2] * 100), 8000, subtype="FLOAT")
    elif case == "empty":
        sf.write(src, np.zeros(0), 8000)
    elif case == "corrupt":
        src.write_bytes(b"RIFF....WAVEfmt garbage")
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(800), 8000)
    res = cli(good, src, "-o", tmp_path / "out", "--model", model)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_model_without_spec_and_bad_output_name(tmp_path, model):
    fake = tmp_path / "plain.tflite"
    fake.write_bytes(b"\x00" * 100)
    res = cli(model, "-o", tmp_path / "o.wav", "--model", fake)
    assert res.returncode == 1 and res.stderr.startswith("error:")
    sf.write(tmp_path / "x.wav", np.zeros(800), 8000)
    res = cli(tmp_path / "x.wav", "-o", tmp_path / "o.txt", "--model", model)
    assert res.returncode == 1 and "audio extension" in res.stderr


def test_help():
    res = cli("--help")
    assert res.returncode == 0 and "--min-gain-db" in res.stdout


def test_runtime_denoise_is_the_function_after_the_cli_is_imported_and_run(rng):
    """The CLI lives in runtime.cli, so importing it (as benchmarks do) leaves the function
    ``runtime.denoise`` in place; ``python -m runtime.denoise`` does not import the module."""
    import importlib
    import types

    import runtime
    from runtime.offline import denoise as offline_denoise

    importlib.import_module("runtime.cli")
    importlib.import_module("benchmarks.quality")
    from runtime import denoise

    assert isinstance(denoise, types.FunctionType) and denoise is offline_denoise
    x = rng.standard_normal(4000) * 0.1
    assert runtime.denoise(x, 8000, None).shape == x.shape
    res = subprocess.run([sys.executable, "-c", "import runpy, runtime, types, sys; sys.argv = ['x', '--help'];"
                          "\ntry: runpy.run_module('runtime.denoise', run_name='__main__')"
                          "\nexcept SystemExit: pass"
                          "\nassert isinstance(runtime.denoise, types.FunctionType)"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


@pytest.fixture
def two_rate_models(stored_models, tmp_path, monkeypatch):
    """A bundled-models folder with an 8 kHz and a 16 kHz CRNN (the small stored ones)."""
    import shutil

    import runtime.stream

    folder = tmp_path / "bundled"
    folder.mkdir()
    shutil.copy(stored_models[("crnn", "int8")], folder / "crnn_int8.tflite")
    shutil.copy(Path(stored_models[("crnn", "int8")]).parent / "crnn16k_int8.tflite",
                folder / "crnn16k_int8.tflite")
    monkeypatch.setattr(runtime.stream, "MODELS_DIR", folder)
    return folder


def test_bundled_model_is_picked_by_the_input_rate(two_rate_models, tmp_path, rng, capsys):
    from runtime import StreamDenoiser, denoise, denoise_file
    from runtime.cli import main
    from runtime.stream import default_model_path

    wide, narrow = two_rate_models / "crnn16k_int8.tflite", two_rate_models / "crnn_int8.tflite"
    assert [default_model_path(r).name for r in (None, 8000, 11025, 16000, 44100, 48000)] == \
        [narrow.name] * 3 + [wide.name] * 3
    assert StreamDenoiser(sample_rate=16000).sample_rate == 16000
    assert StreamDenoiser(sample_rate=8000).sample_rate == 8000
    x16 = rng.standard_normal(16000) * 0.1
    np.testing.assert_array_equal(denoise(x16, 16000), denoise(x16, 16000, str(wide)))
    x48 = rng.standard_normal(48000) * 0.1
    np.testing.assert_array_equal(denoise(x48, 48000), denoise(x48, 48000, str(wide)))
    assert not np.array_equal(denoise(x16, 16000), denoise(x16, 16000, str(narrow)))
    # the command line names the model it picked, per file
    for rate, name in ((16000, wide.name), (8000, narrow.name), (44100, wide.name)):
        src = tmp_path / f"x{rate}.wav"
        sf.write(src, rng.standard_normal(rate) * 0.1, rate)
        assert main([str(src), "-o", str(tmp_path / f"y{rate}.wav"), "--verbose"]) == 0
        err = capsys.readouterr().err
        assert f"model: {name} (bundled, crnn, {16000 if rate >= 16000 else 8000} Hz" in err
        denoise_file(src, tmp_path / f"z{rate}.wav")  # the file path picks the same model
        np.testing.assert_array_equal(sf.read(str(tmp_path / f"y{rate}.wav"))[0],
                                      sf.read(str(tmp_path / f"z{rate}.wav"))[0])
    # a named model is used as given, whatever the rate
    src = tmp_path / "x16000.wav"
    assert main([str(src), "-o", str(tmp_path / "n.wav"), "--model", str(narrow), "--verbose"]) == 0
    assert f"model: {narrow.name} (crnn, 8000 Hz" in capsys.readouterr().err
    # without a 16 kHz model installed, 16 kHz input falls back to the 8 kHz one
    wide.unlink()
    assert default_model_path(16000).name == narrow.name


def test_a_stream_at_another_rate_than_its_model_says_to_resample(two_rate_models):
    from runtime import AudioError, StreamDenoiser

    with pytest.raises(AudioError, match="resample first"):
        StreamDenoiser(sample_rate=44100)
