import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from export.inspect_ops import summary  # noqa: E402
from export.to_tflite import LSTM_CELL_OPS, embed_metadata, main  # noqa: E402
from runtime.errors import ModelError, SpecError  # noqa: E402
from runtime.model_file import SPEC_METADATA_NAME, TfliteDenoiserModel, read_metadata, read_spec  # noqa: E402
from runtime.spec import SPEC_VERSION  # noqa: E402


def test_cr_ced_int8_is_small_and_every_compute_op_is_int8(exported):
    path, report = exported[("cr-ced", "int8")]
    assert path.stat().st_size <= 48 * 1024
    ops = summary(path)
    assert ops["all_compute_int8"], ops["non_int8_compute_ops"]
    assert ops["ops"]["CONV_2D"] == 16
    assert report["parameters"] == 32933


def test_crnn_int8_has_int8_weights_and_a_float_lstm_cell(exported):
    path, _ = exported[("crnn", "int8")]
    ops = summary(path)
    assert ops["weight_ops_int8"], ops["non_int8_compute_ops"]
    assert set(ops["non_int8_compute_ops"]) <= set(LSTM_CELL_OPS)
    assert {"MUL", "TANH"} <= set(ops["non_int8_compute_ops"])  # the cell really is float
    assert "FULLY_CONNECTED" in ops["ops"] and "WHILE" not in ops["ops"]
    assert read_spec(path).info["float_ops"] == list(LSTM_CELL_OPS)


def test_crnn_int8_lstm_cell_int8_is_fully_integer(tiny_runs, tmp_path):
    from export.to_tflite import export

    report = export(tiny_runs["crnn"], "int8", tmp_path / "full.tflite", lstm_cell="int8")
    assert report["all_compute_int8"], report["non_int8_compute_ops"]
    assert "float_ops" not in read_spec(tmp_path / "full.tflite").info


@pytest.mark.parametrize("kind", ["cr-ced", "crnn"])
def test_float32_export_matches_keras(kind, exported):
    _, report = exported[(kind, "float32")]
    assert report["max_abs_error"] <= 1e-4
    _, report8 = exported[(kind, "int8")]
    assert report8["output_snr_db"] > 15  # int8 of a tiny barely-trained model still tracks it


def test_crnn_streaming_tflite_equals_keras_sequence(exported, tiny_runs, rng):
    """Frame by frame with carried state vs the Keras model over the whole sequence."""
    from training.run_dir import load_run

    model, spec, _ = load_run(tiny_runs["crnn"])
    path, _ = exported[("crnn", "float32")]
    tfl = TfliteDenoiserModel(path)
    feats = rng.standard_normal((1, 200, spec.n_bins)).astype(np.float32)
    ref = model.predict(feats, verbose=0)[0]
    got = np.stack([tfl(feats[0, t]).copy() for t in range(200)])
    assert np.max(np.abs(got - ref)) <= 1e-4


def test_spec_travels_in_the_file(exported, tiny_runs):
    path, _ = exported[("crnn", "int8")]
    spec = read_spec(path)
    assert spec.model_kind == "crnn" and set(spec.state_shapes) == {"h", "c"}
    assert spec.info["quant"] == "int8" and spec.info["parameters"] > 0
    run_spec = json.loads((tiny_runs["crnn"] / "spec.json").read_text())
    assert spec.n_fft == run_spec["n_fft"] and spec.feature_mean
    # every run-time setting is written, the defaults unless asked otherwise
    from runtime.spec import RUN_TIME_DEFAULTS

    assert spec.run_time == RUN_TIME_DEFAULTS and spec.version == SPEC_VERSION


def test_cli_writes_the_run_time_settings_the_runtime_then_applies(tiny_runs, tmp_path, capsys):
    from runtime import StreamDenoiser

    out = tmp_path / "m.tflite"
    assert main([str(tiny_runs["crnn"]), "--quant", "float32", "--out", str(out), "--postfilter", "none",
                 "--min-gain-db", "none", "--postfilter-floor-db", "-12"]) == 0
    assert "postfilter none" in capsys.readouterr().out
    spec = read_spec(out)
    assert (spec.setting("postfilter"), spec.setting("min_gain_db"), spec.setting("postfilter_floor_db")) == \
        ("none", None, -12.0)
    sd = StreamDenoiser(out)
    assert sd.postfilter == "none" and sd.min_gain_db is None and sd.dsp.min_gain == 0.0
    assert main([str(tiny_runs["crnn"]), "--out", str(tmp_path / "bad.tflite"),
                 "--postfilter-sub-windows", "0"]) == 1


def test_model_without_spec_is_refused(exported, tmp_path):
    path, _ = exported[("cr-ced", "float32")]
    data = path.read_bytes()
    import tensorflow as tf  # noqa: F401  (the stripping uses TF's flatbuffer tools)
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    model.metadata = [m for m in model.metadata if m.name != SPEC_METADATA_NAME.encode()]
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    with pytest.raises(SpecError, match="no 'denoise_spec' metadata"):
        TfliteDenoiserModel(bare)


def test_model_with_newer_spec_is_refused(exported, tmp_path):
    path, _ = exported[("cr-ced", "float32")]
    spec = json.loads(read_metadata(path.read_bytes())[SPEC_METADATA_NAME])
    spec["version"] = SPEC_VERSION + 1
    newer = tmp_path / "newer.tflite"
    newer.write_bytes(embed_metadata(path.read_bytes(), SPEC_METADATA_NAME, json.dumps(spec).encode()))
    with pytest.raises(SpecError, match="newer than this runtime"):
        TfliteDenoiserModel(newer)


def test_garbage_file_is_refused(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError):
        read_spec(bad)


def test_cli_prints_the_report(tiny_runs, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    assert main([str(tiny_runs["cr-ced"]), "--quant", "dynamic", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for word in ("size", "parameters", "MACs per frame", "ops", "all compute ops int8", "weight ops int8",
                 "max abs error"):
        assert word in text
    assert main([str(tmp_path), "--quant", "int8"]) == 1


@pytest.mark.parametrize("kind", ["cr-ced", "crnn"])
def test_qat_fine_tune_exports_to_full_int8(kind, tiny_runs, tiny_mix, tmp_path):
    """QAT from a float run (the CRNN's LSTM stays float in QAT and is calibrated at
    conversion), then an all-int8 export that keeps the spec's tensor names."""
    from training.train import main as train_main

    from .models_fixtures import train_args

    out = tmp_path / "qat"
    args = train_args(kind, tiny_mix, out, epochs=1, extra=["--qat", "--from", str(tiny_runs[kind])])
    assert train_main(args) == 0
    assert json.loads((out / "config.json").read_text())["qat"] is True
    path = tmp_path / "qat.tflite"
    from export.to_tflite import export

    report = export(out, "int8", path, lstm_cell="int8")
    assert report["all_compute_int8"]
    assert report["output_snr_db"] > 15
    model = TfliteDenoiserModel(path)  # binds frame/h_in/c_in -> mask/h_out/c_out, or the single I/O
    if kind == "cr-ced":
        # the unrolled head holds the same int8 weights and scale as the conv it replaces
        dense = export(out, "int8", tmp_path / "dense.tflite", dense_head=True)
        assert dense["all_compute_int8"] and dense["ops"]["FULLY_CONNECTED"] == 1
        other = TfliteDenoiserModel(tmp_path / "dense.tflite")
        rng = np.random.default_rng(0)
        for _ in range(20):
            x = rng.normal(size=model.input_shape).astype(np.float32)
            np.testing.assert_allclose(other(x), model(x), atol=1.5 / 256)


@pytest.mark.parametrize("dense_head", [False, True])
def test_cr_ced_export_layout_computes_the_trained_function(dense_head, tiny_runs, tmp_path):
    """The export graph (context frames as the first conv's channels; optionally the last
    conv unrolled into one matrix) matches the training graph in Keras."""
    from export.to_tflite import export

    report = export(tiny_runs["cr-ced"], "float32", tmp_path / "m.tflite", dense_head=dense_head)
    assert report["max_abs_error"] <= 1e-5
    assert report["ops"].get("FULLY_CONNECTED", 0) == int(dense_head)
    assert report["ops"]["CONV_2D"] == 16 - int(dense_head)
    assert read_spec(tmp_path / "m.tflite").info.get("dense_head", False) is dense_head


def test_dense_head_is_refused_for_the_crnn(tiny_runs, tmp_path, capsys):
    assert main([str(tiny_runs["crnn"]), "--dense-head", "--out", str(tmp_path / "x.tflite")]) == 1
    assert "CR-CED" in capsys.readouterr().err


def test_crnn_input_skip_fine_tunes_quantizes_and_exports(tiny_runs, tiny_mix, tmp_path, rng):
    """--from RUN --input-skip keeps the run's function at the start, records the skip in
    the run's size, and survives QAT and both exports (the int8 file with its float cell);
    the float32 file streams to the Keras sequence output."""
    from export.to_tflite import export
    from training.run_dir import load_run
    from training.train import main as train_main

    from .models_fixtures import train_args

    base, spec, _ = load_run(tiny_runs["crnn"])
    skip_run = tmp_path / "skip"
    args = train_args("crnn", tiny_mix, skip_run, epochs=1,
                      extra=["--from", str(tiny_runs["crnn"]), "--input-skip", "--lr", "0"])
    assert train_main(args) == 0
    assert json.loads((skip_run / "config.json").read_text())["size"]["input_skip"] is True
    model, _, _ = load_run(skip_run)
    # lr 0 leaves the weights as grown: the base run's, and zero rows for the skip
    kernel = model.get_layer("mask").get_weights()[0]
    units = base.get_layer("lstm").weights[1].shape[0]
    np.testing.assert_array_equal(kernel[:units], base.get_layer("mask").get_weights()[0])
    assert kernel.shape[0] == units + spec.n_bins and not kernel[units:].any()
    for a, b in zip(model.get_layer("lstm").get_weights(), base.get_layer("lstm").get_weights()):
        np.testing.assert_array_equal(a, b)
    feats = rng.standard_normal((1, 60, spec.n_bins)).astype(np.float32)

    qat = tmp_path / "skip_qat"
    assert train_main(train_args("crnn", tiny_mix, qat, epochs=1,
                                 extra=["--qat", "--from", str(skip_run)])) == 0
    report = export(qat, "int8", tmp_path / "skip_int8.tflite")
    assert report["weight_ops_int8"] and report["output_snr_db"] > 15
    export(skip_run, "float32", tmp_path / "skip_f32.tflite")
    tfl = TfliteDenoiserModel(tmp_path / "skip_f32.tflite")
    got = np.stack([tfl(feats[0, t]).copy() for t in range(60)])
    np.testing.assert_allclose(got, model.predict(feats, verbose=0)[0], atol=1e-4)


def test_crnn_pooled_front_end_fine_tunes_onto_a_run_quantizes_and_exports(tiny_runs, tiny_mix, tmp_path, rng, capsys):
    """--from RUN --pool-above HZ keeps the run's LSTM and output layer, records the pooling
    in the run's size (and fewer MACs), survives QAT and the int8 export, and the float32
    file streams to the Keras sequence output; CR-CED and a QAT run refuse it."""
    from export.to_tflite import export
    from training.run_dir import load_run
    from training.train import main as train_main

    from .models_fixtures import train_args

    base, spec, base_cfg = load_run(tiny_runs["crnn"])
    run = tmp_path / "pooled"
    assert train_main(train_args("crnn", tiny_mix, run, epochs=1,
                                 extra=["--from", str(tiny_runs["crnn"]), "--pool-above", "1000", "--lr", "0"])) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["size"]["pool_above_hz"] == 1000.0 and cfg["macs_per_frame"] < base_cfg["macs_per_frame"]
    model, _, _ = load_run(run)
    for a, b in zip(model.get_layer("lstm").get_weights(), base.get_layer("lstm").get_weights()):
        np.testing.assert_array_equal(a, b)
    qat = tmp_path / "pooled_qat"
    assert train_main(train_args("crnn", tiny_mix, qat, epochs=1, extra=["--qat", "--from", str(run)])) == 0
    report = export(qat, "int8", tmp_path / "pooled_int8.tflite")
    assert report["weight_ops_int8"] and report["output_snr_db"] > 15
    export(run, "float32", tmp_path / "pooled_f32.tflite")
    feats = rng.standard_normal((1, 40, spec.n_bins)).astype(np.float32)
    tfl = TfliteDenoiserModel(tmp_path / "pooled_f32.tflite")
    got = np.stack([tfl(feats[0, t]).copy() for t in range(40)])
    np.testing.assert_allclose(got, model.predict(feats, verbose=0)[0], atol=1e-4)
    capsys.readouterr()
    assert train_main(train_args("cr-ced", tiny_mix, tmp_path / "x", epochs=1, extra=["--pool-above", "1000"])) == 1
    assert "CR-CED" in capsys.readouterr().err
    assert train_main(train_args("crnn", tiny_mix, tmp_path / "y", epochs=1,
                                 extra=["--qat", "--from", str(run), "--pool-above", "1000"])) == 1
    assert "re-learn" in capsys.readouterr().err


def test_training_side_postfilter_equals_the_runtime_default(exported, tiny_runs, rng):
    """What training scores with the post-filter (QualityCallback, --postfilter-loss) is what
    the runtime plays by default: the float export streamed with its post-filter on."""
    from runtime.offline import denoise
    from runtime.stream import DEFAULT_MIN_GAIN_DB
    from training.enhance import enhance
    from training.run_dir import load_run

    model, spec, _ = load_run(tiny_runs["cr-ced"])
    t = np.arange(16000) / 8000
    x = 0.05 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * 440 * t) * (t > 1.0)
    ours = enhance(model, x, spec, postfilter=True)
    runtime = denoise(x, 8000, str(exported[("cr-ced", "float32")][0]), min_gain_db=None,
                      postfilter="wiener")
    assert np.max(np.abs(ours - runtime)) < 1e-4
    # and the post-filter changes the output here: without it the two differ
    assert np.max(np.abs(enhance(model, x, spec) - runtime)) > 1e-3
    # with the runtime's attenuation limit too: QualityCallback scores the CLI's default output
    default = denoise(x, 8000, str(exported[("cr-ced", "float32")][0]))
    limited = enhance(model, x, spec, postfilter=True, min_gain_db=DEFAULT_MIN_GAIN_DB)
    assert np.max(np.abs(limited - default)) < 1e-4


def test_set_run_time_rewrites_only_the_settings(tmp_path, capsys):
    """export.set_run_time changes the settings a file carries and nothing else: the
    model computes the same, the spec's other fields stay, unchanged settings keep the
    file's values, and a stream then applies the new ones."""
    from export.set_run_time import main as set_main
    from runtime import StreamDenoiser

    src = Path(__file__).parent / "data" / "models" / "crnn16k_int8.tflite"  # non-default settings
    before = read_spec(src)
    out = tmp_path / "retuned.tflite"
    assert set_main([str(src), "--min-gain-db", "-30", "-o", str(out)]) == 0
    assert "min_gain_db -30.0" in capsys.readouterr().out
    after = read_spec(out)
    assert after.setting("min_gain_db") == -30.0
    for name in ("postfilter", "postfilter_exponent", "postfilter_floor_db", "postfilter_window_s",
                 "postfilter_sub_windows"):
        assert after.setting(name) == before.setting(name), name
    assert after.replace(run_time={}) == before.replace(run_time={})
    # the old spec's buffer is reused, not left behind: rewriting twice does not grow the file
    assert set_main([str(out), "--min-gain-db", "-31"]) == 0
    assert abs(out.stat().st_size - src.stat().st_size) < 64
    a, b = TfliteDenoiserModel(src), TfliteDenoiserModel(out)
    x = np.random.default_rng(0).normal(size=a.input_shape).astype(np.float32)
    for _ in range(3):  # states carried too
        np.testing.assert_array_equal(a(x), b(x))
    assert StreamDenoiser(out).min_gain_db == -31.0
    # errors: a bad value or a file without a spec writes nothing; no change asked is refused
    assert set_main([str(src), "--min-gain-db", "5", "-o", str(tmp_path / "bad.tflite")]) == 1
    assert not (tmp_path / "bad.tflite").exists()
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    assert set_main([str(junk), "--postfilter", "none"]) == 1
    assert "error:" in capsys.readouterr().err
    assert set_main([str(src)]) == 2


def test_crnn_second_lstm_grows_quantizes_exports_streams_and_converts_back(tiny_runs, tiny_mix, tmp_path, rng):
    """--from RUN --units2 N stacks a second LSTM whose output rows start at zero (the run's
    function is kept), records it in the run's size, and survives QAT and both exports with
    four named states (h, c, h2, c2); the float32 file streams to the Keras sequence output
    and training.from_tflite reads it back into a run of the same function."""
    from export.to_tflite import export
    from training.from_tflite import to_run
    from training.run_dir import load_run
    from training.train import main as train_main

    from .models_fixtures import train_args

    base, spec, _ = load_run(tiny_runs["crnn"])
    stacked = tmp_path / "stacked"
    args = train_args("crnn", tiny_mix, stacked, epochs=1,
                      extra=["--from", str(tiny_runs["crnn"]), "--units2", "12", "--lr", "0"])
    assert train_main(args) == 0
    assert json.loads((stacked / "config.json").read_text())["size"]["units2"] == 12
    model, _, _ = load_run(stacked)
    feats = rng.standard_normal((1, 60, spec.n_bins)).astype(np.float32)
    # lr 0 leaves the weights as grown (only batch-norm statistics move): the base run's,
    # and zero output rows for the second LSTM
    units = base.get_layer("lstm").units
    kernel = model.get_layer("mask").get_weights()[0]
    np.testing.assert_array_equal(kernel[:units], base.get_layer("mask").get_weights()[0])
    assert kernel.shape[0] == units + 12 and not kernel[units:].any()
    for a, b in zip(model.get_layer("lstm").get_weights(), base.get_layer("lstm").get_weights()):
        np.testing.assert_array_equal(a, b)

    # a real fine-tune moves the second LSTM's rows off zero; the files must carry it
    tuned = tmp_path / "stacked_tuned"
    assert train_main(train_args("crnn", tiny_mix, tuned, epochs=1, extra=["--from", str(stacked)])) == 0
    model, _, _ = load_run(tuned)
    assert np.abs(model.get_layer("mask").get_weights()[0][units:]).max() > 1e-4

    qat = tmp_path / "stacked_qat"
    assert train_main(train_args("crnn", tiny_mix, qat, epochs=1, extra=["--qat", "--from", str(tuned)])) == 0
    report = export(qat, "int8", tmp_path / "stacked_int8.tflite")
    assert report["weight_ops_int8"] and report["output_snr_db"] > 15
    int8 = TfliteDenoiserModel(tmp_path / "stacked_int8.tflite")
    assert int8.spec.state_shapes == {"h": [1, units], "c": [1, units], "h2": [1, 12], "c2": [1, 12]}

    f32 = tmp_path / "stacked_f32.tflite"
    export(tuned, "float32", f32)
    tfl = TfliteDenoiserModel(f32)
    got = np.stack([tfl(feats[0, t]).copy() for t in range(60)])
    np.testing.assert_allclose(got, model.predict(feats, verbose=0)[0], atol=1e-4)

    back, _, cfg = load_run(to_run(f32, tmp_path / "recovered", str(tiny_mix)))
    assert cfg["size"]["units2"] == 12
    np.testing.assert_allclose(back.predict(feats, verbose=0), model.predict(feats, verbose=0), atol=1e-4)


def test_growing_the_lstms_of_a_stacked_crnn_is_a_one_line_error(tiny_runs, tiny_mix, tmp_path, capsys):
    from training.train import main as train_main

    from .models_fixtures import train_args

    stacked = tmp_path / "stacked"
    assert train_main(train_args("crnn", tiny_mix, stacked, epochs=1,
                                 extra=["--from", str(tiny_runs["crnn"]), "--units2", "8", "--lr", "0"])) == 0
    capsys.readouterr()
    assert train_main(train_args("crnn", tiny_mix, tmp_path / "wider", epochs=1,
                                 extra=["--from", str(stacked), "--units2", "16"])) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "second LSTM" in err and len(err.splitlines()) == 1
    assert train_main(train_args("crnn", tiny_mix, tmp_path / "neg", epochs=1, extra=["--units2", "-1"])) == 1
