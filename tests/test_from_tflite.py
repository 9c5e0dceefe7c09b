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
