import json

import numpy as np
import pytest

from benchmarks import latency, quality
from benchmarks.baseline import wiener_denoise
from benchmarks.peers import DEFAULT_PEER_ROOT
from runtime.example_audio import noisy_example
from runtime.metrics import si_sdr
from runtime.spec import preset

from .conftest import SHARED_DATA, needs_metrics, needs_shared


def test_si_sdr_is_scale_invariant_and_rewards_less_noise(rng):
    s = rng.standard_normal(8000)
    n = rng.standard_normal(8000)
    assert si_sdr(s, 0.3 * s) > 100
    assert si_sdr(s, s + 0.1 * n) > si_sdr(s, s + 0.5 * n)
    assert si_sdr(s, s + n) == pytest.approx(0.0, abs=0.5)


def test_wiener_baseline_removes_stationary_noise():
    noisy, clean = noisy_example(8000, 4.0, snr_db=0.0)
    out = wiener_denoise(noisy, preset("paper8k"))
    assert out.shape == noisy.shape
    assert si_sdr(clean, out) > si_sdr(clean, noisy) + 2


def test_latency_prints_ours_and_dtln_side_by_side(stored_models, tmp_path, capsys):
    models = [stored_models[("cr-ced", "int8")], stored_models[("cr-ced", "float32")]]
    out = tmp_path / "lat.json"
    assert latency.main([*map(str, models), "--seconds", "1", "--rounds", "1", "--peers", "dtln,dtln-quant",
                         "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())["results"]
    assert {r["model"] for r in rows} >= {"cr-ced_int8.tflite", "cr-ced_float32.tflite"}
    for r in rows:
        if r["kind"] != "peer":
            assert r["invoke_us"]["median"] > 0 and r["frame_us"]["median"] >= r["invoke_us"]["median"]
        assert r["real_time_factor"] > 0 and r["cpu_ms_per_audio_second"] > 0
    assert "real time" in text and "| model |" in text
    if (DEFAULT_PEER_ROOT / "dtln" / "model_1.tflite").exists():
        assert {r["model"] for r in rows if r["kind"] == "peer"} == {"DTLN (float32)", "DTLN (dynamic int8)"}
        assert "vs DTLN-quant" in text


def test_offline_cost_sets_the_cli_against_the_invokes_of_the_same_frames(stored_models, tmp_path, capsys):
    """benchmarks.offline_cost runs the real CLI on a file it writes and counts the frames
    runtime.denoise makes; a file that is not a model is a one-line error."""
    from benchmarks import offline_cost
    from runtime.dsp import frame_count
    from runtime.model_file import read_spec

    model = stored_models[("cr-ced", "int8")]
    out = tmp_path / "cost.json"
    assert offline_cost.main([str(model), "--seconds", "2", "--repeats", "1", "--json", str(out)]) == 0
    (res,) = json.loads(out.read_text())
    spec = read_spec(model)
    assert res["frames"] == frame_count(2 * spec.sample_rate, spec)
    run = res["runs"][0]
    assert run["cli_cpu_s"] > run["invoke_cpu_s"] > 0 and run["ratio"] == pytest.approx(run["cli_cpu_s"] / run["invoke_cpu_s"])
    assert "CLI / invokes" in capsys.readouterr().out
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    assert offline_cost.main([str(junk)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1


@needs_metrics
def test_quality_on_a_manifest_dir(stored_models, tiny_mix, tmp_path, capsys):
    out = tmp_path / "q.json"
    assert quality.main([str(stored_models[("crnn", "int8")]), "--data", str(tiny_mix), "--json", str(out),
                         "--plots", str(tmp_path / "plots")]) == 0
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"noisy", "wiener", "crnn_int8.tflite"}
    assert all(np.isfinite(v["all"]["stoi"]) for v in result["summary"].values())
    assert list((tmp_path / "plots").glob("spectrograms_*.png"))
    assert (tmp_path / "plots" / "quality_vs_cost.png").stat().st_size > 1000
    assert quality.main([str(stored_models[("crnn", "int8")]), "--data", str(tmp_path)]) == 1


@needs_metrics
def test_quality_oracle_row_is_the_ceiling_of_a_bounded_mask(stored_models, tiny_mix, tmp_path, capsys):
    """--oracle: the ideal bounded mask beats the noisy input and every model, has no CPU
    cost, and leaves the other rows as they are."""
    model = str(stored_models[("cr-ced", "int8")])
    out = tmp_path / "q.json"
    assert quality.main([model, "--data", str(tiny_mix), "--limit", "3", "--oracle", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    summary = {k: v["all"] for k, v in res["summary"].items()}
    assert summary["oracle mask"]["pesq"] > max(summary["noisy"]["pesq"], summary["cr-ced_int8.tflite"]["pesq"])
    assert summary["oracle mask"]["si_sdr"] > summary["noisy"]["si_sdr"] + 3
    assert "oracle mask" not in res["cpu_ms_per_second"]
    assert "| oracle mask |" in capsys.readouterr().out
    plain = quality.evaluate([model], tiny_mix, limit=3)
    assert json.dumps(plain["summary"]["noisy"]) == json.dumps(res["summary"]["noisy"])  # NaN-safe equality
    assert "oracle mask" not in plain["summary"]


@needs_metrics
def test_quality_min_gain_zero_db_scores_the_model_as_the_noisy_input(stored_models, tiny_mix, tmp_path):
    """--min-gain-db 0 caps every gain at 1: the model must then score exactly like the input."""
    out = tmp_path / "q0.json"
    model = stored_models[("crnn", "int8")]
    assert quality.main([str(model), "--data", str(tiny_mix), "--limit", "2", "--min-gain-db", "0",
                         "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["min_gain_db"] == 0
    noisy, ours = result["summary"]["noisy"]["all"], result["summary"][model.name]["all"]
    assert abs(noisy["si_sdr"] - ours["si_sdr"]) < 0.01 and abs(noisy["pesq"] - ours["pesq"]) < 0.01


@needs_metrics
def test_quality_input_gain_changes_what_the_systems_hear_not_the_reference(tiny_mix, tmp_path):
    from runtime.stream import default_model_path

    model = default_model_path()  # a trained model's log features react to the level
    results = {}
    for db in ("0", "-30"):
        out = tmp_path / f"g{db}.json"
        assert quality.main([str(model), "--data", str(tiny_mix), "--limit", "2", "--input-gain-db", db,
                             "--json", str(out)]) == 0
        results[db] = json.loads(out.read_text())
    assert results["-30"]["input_gain_db"] == -30
    same, quiet = results["0"]["summary"], results["-30"]["summary"]
    assert same["noisy"]["all"] == quiet["noisy"]["all"]  # the unprocessed row is the file itself
    # a model fed 30 dB quieter features produces a different output
    assert abs(same[model.name]["all"]["si_sdr"] - quiet[model.name]["all"]["si_sdr"]) > 0.05
    assert quality.main([str(model), "--data", str(tiny_mix), "--input-gain-db", "-90"]) == 2


@needs_metrics
def test_quality_clean_input_scores_what_systems_do_to_clean_speech(stored_models, tiny_mix, tmp_path):
    model = stored_models[("crnn", "int8")]
    runs = {}
    for flag in ([], ["--clean-input"]):
        out = tmp_path / f"c{len(flag)}.json"
        assert quality.main([str(model), "--data", str(tiny_mix), "--limit", "2", *flag,
                             "--json", str(out)]) == 0
        runs[bool(flag)] = json.loads(out.read_text())
    clean_run = runs[True]["summary"]
    assert runs[True]["clean_input"] is True
    # (no STOI here: pystoi cannot score 1 s synthetic pairs)
    assert clean_run["noisy"]["all"]["pesq"] > 4.0 and clean_run["noisy"]["all"]["si_sdr"] > 100
    # the model now hears the clean file: its output differs from the noisy-input run's
    assert abs(clean_run[model.name]["all"]["si_sdr"] - runs[False]["summary"][model.name]["all"]["si_sdr"]) > 0.05


@needs_metrics
@needs_shared("paired_16k", "voicebank_demand")
def test_quality_on_voicebank_demand_resampled(stored_models, tmp_path, capsys):
    out = tmp_path / "vb.json"
    data = SHARED_DATA / "paired_16k" / "voicebank_demand"
    assert quality.main([str(stored_models[("cr-ced", "int8")]), "--data", str(data), "--limit", "3",
                         "--json", str(out), "--plots", str(tmp_path / "p")]) == 0
    result = json.loads(out.read_text())
    assert result["rate"] == 8000 and result["pairs"] == 3
    assert "narrow-band" in capsys.readouterr().out


@needs_metrics
@needs_shared("paired_16k", "voicebank_demand")
def test_quality_scores_an_8k_model_on_16k_audio_with_and_without_the_high_band(tmp_path, capsys):
    """--score-rate 16000: wide-band PESQ of what runtime.denoise returns for 16 kHz files;
    the bundled default scores better keeping the band above 4 kHz than dropping it."""
    from runtime.stream import default_model_path

    data = SHARED_DATA / "paired_16k" / "voicebank_demand"
    model = default_model_path()
    results = {}
    for mode in ("gain", "drop"):
        out = tmp_path / f"{mode}.json"
        assert quality.main([str(model), "--data", str(data), "--limit", "4", "--score-rate", "16000",
                             "--high-band", mode, "--json", str(out), "--plots", str(tmp_path / mode)]) == 0
        results[mode] = json.loads(out.read_text())
    assert results["gain"]["rate"] == 16000 and results["gain"]["model_rate"] == 8000
    assert "wide-band" in capsys.readouterr().out
    kept, dropped = (results[m]["summary"][model.name]["all"]["pesq"] for m in ("gain", "drop"))
    assert kept > dropped + 0.02
    assert results["gain"]["summary"]["noisy"] == results["drop"]["summary"]["noisy"]
    with pytest.raises(SystemExit) as exc:  # PESQ has no 44.1 kHz mode
        quality.main([str(model), "--data", str(data), "--score-rate", "44100"])
    assert exc.value.code == 2


@needs_metrics
def test_quality_keeps_a_row_for_each_model_when_file_names_repeat(stored_models, tiny_mix, tmp_path):
    import shutil

    path = stored_models[("crnn", "int8")]
    copy = tmp_path / "retrained" / path.name
    copy.parent.mkdir()
    shutil.copy(path, copy)
    assert quality.display_names([path, copy]) == [f"{path.parent.name}/{path.name}",
                                                    f"retrained/{path.name}"]
    out = tmp_path / "q.json"
    assert quality.main([str(path), str(copy), "--data", str(tiny_mix), "--limit", "1",
                         "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())["summary"]) == 4  # noisy, wiener and both models
    assert quality.main([str(path), str(path), "--data", str(tiny_mix)]) == 1


@needs_metrics
@needs_shared("paired_16k", "voicebank_demand")
def test_quality_postfilter_both_scores_each_model_with_and_without_it(tmp_path, capsys):
    """The bundled default with its Wiener post-filter (the runtime's default) against the
    model alone, on real noisy recordings: two rows, and the post-filter gains PESQ."""
    from runtime.stream import default_model_path

    data = SHARED_DATA / "paired_16k" / "voicebank_demand"
    model = default_model_path()
    out = tmp_path / "pf.json"
    assert quality.main([str(model), "--data", str(data), "--limit", "8", "--postfilter", "both",
                         "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["postfilter"] == "both"
    rows = result["summary"]
    with_pf, alone = rows[model.name]["all"], rows[f"{model.name} (no post-filter)"]["all"]
    assert with_pf["pesq"] > alone["pesq"] + 0.03
    assert "post-filter both" in capsys.readouterr().out


def test_latency_postfilter_both_times_each_model_with_and_without_it(stored_models, tmp_path):
    model = stored_models[("crnn", "int8")]
    out = tmp_path / "lat.json"
    assert latency.main([str(model), "--seconds", "1", "--no-peer", "--postfilter", "both",
                         "--json", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {model.name, f"{model.name} (no post-filter)"}
    assert rows[model.name]["postfilter"] == "wiener"
    assert rows[f"{model.name} (no post-filter)"]["postfilter"] == "none"


def test_latency_times_each_frame_path_it_is_asked_for(stored_models, tmp_path, capsys):
    from runtime.dsp import kernels_available

    model = stored_models[("crnn", "int8")]
    out = tmp_path / "lat.json"
    args = [str(model), "--seconds", "1", "--rounds", "1", "--no-peer", "--json", str(out)]
    if not kernels_available():
        assert latency.main([*args, "--path", "compiled"]) == 1
        assert "needs numba" in capsys.readouterr().err
        return
    assert latency.main([*args, "--path", "both"]) == 0
    rows = {r["model"]: r for r in json.loads(out.read_text())["results"]}
    assert {name: r["frame_path"] for name, r in rows.items()} == {
        f"{model.name} (compiled)": "compiled", f"{model.name} (numpy)": "numpy"}
    assert "frame path: compiled and numpy" in capsys.readouterr().out


@needs_metrics
def test_operating_point_ranks_grids_by_their_oracle_mask_and_cost(tmp_path, capsys):
    import soundfile as sf

    from benchmarks import operating_point

    for sub in ("clean", "noisy"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        noisy, clean = noisy_example(16000, 2.0, snr_db=0.0, seed=i)
        sf.write(tmp_path / "clean" / f"p{i}.wav", clean, 16000, subtype="FLOAT")
        sf.write(tmp_path / "noisy" / f"p{i}.wav", noisy, 16000, subtype="FLOAT")
    out = tmp_path / "op.json"
    assert operating_point.main(["--data", str(tmp_path), "--json", str(out)]) == 0
    head, *rows = json.loads(out.read_text())
    assert [(r["n_fft"], r["hop"]) for r in rows] == operating_point.CANDIDATES[16000]
    for r in rows:  # an oracle mask cleans far beyond the input
        assert r["oracle_pesq"] > head["noisy"]["pesq"] + 0.25
        assert r["oracle_si_sdr"] > head["noisy"]["si_sdr"] + 5
        assert r["latency_ms"] == 1000 * (r["n_fft"] - r["hop"]) / 16000 <= 32
    for r in rows:  # timings are the benchmark's to compare; here only that they were taken
        assert r["frames_per_s"] == 16000 / r["hop"] and r["frame_path_ms_per_s"] > 0
    assert "| 512/256 | 16 | 62 | 257 |" in capsys.readouterr().out
    assert operating_point.main(["--data", str(tmp_path / "clean")]) == 1


@needs_metrics
def test_quality_scores_8_and_16_khz_models_together_at_one_rate(stored_models, tmp_path):
    import soundfile as sf

    for sub in ("clean", "noisy"):
        (tmp_path / sub).mkdir()
    noisy, clean = noisy_example(16000, 2.0, snr_db=5.0, seed=1)
    sf.write(tmp_path / "clean" / "p.wav", clean, 16000, subtype="FLOAT")
    sf.write(tmp_path / "noisy" / "p.wav", noisy, 16000, subtype="FLOAT")
    narrow = stored_models[("crnn", "int8")]
    wide = narrow.parent / "crnn16k_int8.tflite"
    out = tmp_path / "q.json"
    assert quality.main([str(wide), str(narrow), "--data", str(tmp_path)]) == 1  # which rate?
    assert quality.main([str(wide), str(narrow), "--data", str(tmp_path), "--score-rate", "16000",
                         "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["rate"] == 16000 and result["high_band"] == "gain"
    assert {"crnn16k_int8.tflite", "crnn_int8.tflite"} <= set(result["summary"])
