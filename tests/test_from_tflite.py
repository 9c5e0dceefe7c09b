"""A float32 CRNN file back into a training run: the same function, fine-tunable."""
import json

import numpy as np

from runtime.example_audio import noisy_example
from runtime.offline import denoise


def test_a_float_crnn_file_becomes_a_run_with_the_same_function(exported, tiny_mix, tmp_path):
    from training.enhance import enhance
    from training.from_tflite import main
    from training.run_dir import load_run

    path = exported[("crnn", "float32")][0]
    run = tmp_path / "recovered"
    assert main([str(path), "--out", str(run), "--calibrate", str(tiny_mix)]) == 0
    model, spec, cfg = load_run(run)
    assert cfg["model"] == "crnn" and cfg["converted_from_tflite"] and not cfg["qat"]
    noisy, _ = noisy_example(spec.sample_rate, 3.0)
    ours = enhance(model, noisy, spec)
    shipped = denoise(noisy, spec.sample_rate, str(path), postfilter="none", min_gain_db=None)
    assert np.max(np.abs(ours - shipped)) < 1e-4 * max(1.0, np.max(np.abs(shipped)))
    # in training mode the batch normalisation (fed batch statistics) stays close too
    from training.enhance import model_inputs

    _, feats = model_inputs(noisy, spec)
    infer = model(feats, training=False).numpy()
    train = model(feats, training=True).numpy()
    assert np.mean(np.abs(train - infer)) < 0.05
    assert main([str(path), "--out", str(run)]) == 1  # never over an existing run
    assert json.loads((run / "config.json").read_text())["size"]["units"] == model.get_layer("lstm").units


def test_int8_and_cr_ced_files_are_refused_with_a_clear_error(exported, tmp_path, capsys):
    from training.from_tflite import main

    assert main([str(exported[("cr-ced", "float32")][0]), "--out", str(tmp_path / "a")]) == 1
    assert "only CRNN" in capsys.readouterr().err
    assert main([str(exported[("crnn", "int8")][0]), "--out", str(tmp_path / "b")]) == 1
    assert "not a float32 CRNN" in capsys.readouterr().err


def _exported_and_recovered(spec, size, tiny_mix, tmp_path, rng):
    """(model, recovered model, recovered spec, recovered config): a CRNN of ``size`` with
    every weight distinct, exported float32 and read back by training.from_tflite."""
    from export.to_tflite import export
    from training.from_tflite import to_run
    from training.models import crnn
    from training.run_dir import load_run, write_run

    model = crnn(spec, **size)
    for w in model.weights:  # every weight distinct, the biases of two LSTMs too
        w.assign(rng.uniform(0.05, 0.5, w.shape).astype(np.float32) * rng.choice([-1, 1], w.shape))
    run = write_run(tmp_path / "run", spec, model, {"model": "crnn", "size": size, "qat": False,
                                                     "data": str(tiny_mix)})
    export(run, "float32", tmp_path / "model_f32.tflite")
    back, back_spec, cfg = load_run(to_run(tmp_path / "model_f32.tflite", tmp_path / "recovered", str(tiny_mix)))
    feats = rng.standard_normal((1, 40, spec.n_bins)).astype(np.float32)
    np.testing.assert_allclose(back.predict(feats, verbose=0), model.predict(feats, verbose=0), atol=1e-4)
    return model, back, back_spec, cfg


def test_a_stacked_crnn_with_two_equally_wide_lstms_reads_back_each_lstms_own_weights(tiny_mix, tmp_path, rng):
    """With units2 == units both LSTMs' gate biases have the same shape: each must still be
    read as its own (traced through the graph), or the recovered run computes another function."""
    from runtime.spec import preset

    spec = preset("paper8k", model_kind="crnn", context_frames=1)
    size = {"channels": [4, 4], "proj": 8, "units": 8, "units2": 8}
    model, back, _, cfg = _exported_and_recovered(spec, size, tiny_mix, tmp_path, rng)
    assert cfg["size"]["units"] == cfg["size"]["units2"] == 8
    for name in ("lstm", "lstm2"):
        for a, b in zip(back.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_crnn_with_lookahead_reads_back_its_lookahead_and_projection(tiny_mix, tmp_path, rng):
    """A file with the lookahead's delay line comes back as a run with the lookahead in its
    size and spec, the projection's rows for both frames, and the same function."""
    from runtime.spec import preset

    spec = preset("paper8k", model_kind="crnn", context_frames=1, lookahead_frames=1)
    size = {"channels": [4, 4], "proj": 8, "units": 8, "units2": 4, "lookahead": 1}
    model, back, back_spec, cfg = _exported_and_recovered(spec, size, tiny_mix, tmp_path, rng)
    assert cfg["size"]["lookahead"] == 1 and back_spec.lookahead_frames == 1
    np.testing.assert_allclose(back.get_layer("proj").get_weights()[0], model.get_layer("proj").get_weights()[0],
                               atol=1e-6)
