import csv
import json

import pytest

pytest.importorskip("tensorflow")

from training.train import main  # noqa: E402

from .models_fixtures import train_args  # noqa: E402


def _losses(run):
    with open(run / "history.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("kind", ["cr-ced", "crnn"])
def test_tiny_run_writes_its_artifacts_and_resumes(kind, tiny_mix, tmp_path):
    out = tmp_path / "run"
    assert main(train_args(kind, tiny_mix, out, epochs=1)) == 0
    for name in ("spec.json", "config.json", "best.weights.h5", "last.weights.h5", "history.csv"):
        assert (out / name).is_file(), name
    spec = json.loads((out / "spec.json").read_text())
    assert spec["feature_mean"] and spec["model_kind"] == kind
    assert not (out / "backup").exists()  # a finished run leaves no backup
    # a second start without --resume is refused; with --resume it continues to epoch 3
    assert main(train_args(kind, tiny_mix, out, epochs=3)) == 1
    assert main(train_args(kind, tiny_mix, out, epochs=3, extra=["--resume"])) == 0
    assert len(_losses(out)) == 3


def test_interrupted_run_resumes_from_its_backup(tiny_mix, tmp_path):
    """Simulate a kill after epoch 1: the backup restores and only the remaining epochs run."""
    import tf_keras as keras

    out = tmp_path / "run"

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    import training.train as tr

    original = tr.QualityCallback
    tr.QualityCallback = lambda *a, **k: Kill()
    try:
        with pytest.raises(KeyboardInterrupt):
            main(train_args("crnn", tiny_mix, out, epochs=4))
    finally:
        tr.QualityCallback = original
    assert (out / "backup").exists()
    assert main(train_args("crnn", tiny_mix, out, epochs=4, extra=["--resume"])) == 0
    assert len(_losses(out)) == 4  # 2 before the kill (epoch 2 is redone) ... 4 in total


def test_loss_decreases_over_a_few_epochs(tiny_mix, tmp_path):
    out = tmp_path / "run"
    assert main(train_args("crnn", tiny_mix, out, epochs=4)) == 0
    losses = _losses(out)
    assert losses[-1] < losses[0] * 0.9


def test_mirrored_strategy_trains_on_one_machine(tiny_mix, tmp_path):
    out = tmp_path / "run"
    assert main(train_args("cr-ced", tiny_mix, out, extra=["--distribute", "mirrored"])) == 0
    assert (out / "best.weights.h5").is_file()


def test_from_run_fine_tunes_its_weights_and_keeps_its_spec(tiny_runs, tiny_mix, tmp_path):
    """--from without --qat starts from the run's weights (lr 0: they stay) and spec."""
    import numpy as np

    from training.run_dir import load_run

    base = tiny_runs["crnn"]
    out = tmp_path / "ft"
    args = train_args("crnn", tiny_mix, out, extra=["--from", str(base)])
    args[args.index("--lr") + 1] = "0"
    assert main(args) == 0
    assert json.loads((out / "spec.json").read_text()) == json.loads((base / "spec.json").read_text())
    assert json.loads((out / "config.json").read_text())["from"] == str(base)
    tuned, _, _ = load_run(out, "last")
    original, _, _ = load_run(base)
    np.testing.assert_array_equal(tuned.get_layer("mask").get_weights()[0],
                                  original.get_layer("mask").get_weights()[0])
    # the architecture comes from the run: asking for another one is an error
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "bad", extra=["--from", str(base)])) == 1


def test_crnn_size_options_shape_the_model_and_its_export(tiny_mix, tmp_path):
    from export.to_tflite import export
    from runtime.model_file import read_spec

    out = tmp_path / "small"
    assert main(train_args("crnn", tiny_mix, out, extra=["--units", "16", "--proj", "24",
                                                         "--channels", "4,4"])) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["size"] == {"units": 16, "proj": 24, "channels": [4, 4]}
    assert cfg["parameters"] < 40000  # the default CRNN has 217,425
    export(out, "float32", tmp_path / "small.tflite")
    assert read_spec(tmp_path / "small.tflite").state_shapes == {"h": [1, 16], "c": [1, 16]}
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "x", extra=["--units", "16"])) == 1
    assert main(train_args("crnn", tiny_mix, tmp_path / "y", extra=["--channels", "4;4"])) == 1


@pytest.mark.parametrize("kind", ["cr-ced", "crnn"])
def test_magnitude_target_trains_exports_float_and_streams(kind, tiny_mix, tmp_path):
    """--target magnitude: the output is the clean magnitude (spec output_kind), the float
    export matches Keras, the runtime applies it, and int8/QAT are refused clearly."""
    import numpy as np

    from export.to_tflite import export
    from runtime.model_file import read_spec
    from runtime.offline import denoise

    out = tmp_path / "mag"
    assert main(train_args(kind, tiny_mix, out, extra=["--target", "magnitude"])) == 0
    assert json.loads((out / "spec.json").read_text())["output_kind"] == "magnitude"
    report = export(out, "float32", tmp_path / "mag.tflite")
    assert report["max_scaled_error"] <= 1e-4
    assert read_spec(tmp_path / "mag.tflite").output_kind == "magnitude"
    noisy = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    y = denoise(noisy, 8000, str(tmp_path / "mag.tflite"), min_gain_db=None)
    assert y.shape == noisy.shape and np.all(np.isfinite(y))
    from runtime.errors import DenoiseError

    with pytest.raises(DenoiseError, match="mask"):
        export(out, "int8", tmp_path / "mag8.tflite")
    assert main(train_args(kind, tiny_mix, tmp_path / "q", extra=["--qat", "--from", str(out)])) == 1


def test_distortion_weight_prices_speech_attenuation_and_is_inherited(tiny_runs, tiny_mix, tmp_path):
    import numpy as np

    from training.train import spectral_loss, spectral_loss_weighted

    rng = np.random.default_rng(0)
    clean = rng.uniform(0.1, 1.0, (4, 129)).astype(np.float32)
    noisy = clean + rng.uniform(0.0, 1.0, (4, 129)).astype(np.float32)
    y_true = np.concatenate([clean, noisy], axis=-1)
    ones, half = np.ones_like(clean), np.full_like(clean, 0.5)
    assert spectral_loss_weighted(0.0) is spectral_loss
    # a mask of ones leaves speech untouched: the extra term is zero
    assert float(spectral_loss_weighted(1.0)(y_true, ones)) == pytest.approx(float(spectral_loss(y_true, ones)))
    # halving the mask attenuates speech: exactly W x the error of 0.5 * clean against clean
    extra = np.mean(((0.5 * clean + 1e-6) ** 0.3 - (clean + 1e-6) ** 0.3) ** 2)
    got = float(spectral_loss_weighted(2.0)(y_true, half)) - float(spectral_loss(y_true, half))
    assert got == pytest.approx(2.0 * extra, rel=1e-4)

    out = tmp_path / "dw"
    assert main(train_args("cr-ced", tiny_mix, out, extra=["--from", str(tiny_runs["cr-ced"]),
                                                             "--distortion-weight", "0.5"])) == 0
    assert json.loads((out / "config.json").read_text())["distortion_weight"] == 0.5
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "dwq", extra=["--qat", "--from", str(out)])) == 0
    assert json.loads((tmp_path / "dwq" / "config.json").read_text())["distortion_weight"] == 0.5
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "neg", extra=["--distortion-weight", "-1"])) == 2


def test_residual_weight_prices_only_output_louder_than_speech(tiny_runs, tiny_mix, tmp_path):
    import numpy as np

    from training.train import spectral_loss, spectral_loss_weighted

    rng = np.random.default_rng(1)
    clean = rng.uniform(0.1, 1.0, (4, 129)).astype(np.float32)
    noisy = clean + rng.uniform(0.1, 1.0, (4, 129)).astype(np.float32)
    y_true = np.concatenate([clean, noisy], axis=-1)

    def extra(mask, weight):
        return float(spectral_loss_weighted(0.0, weight)(y_true, mask)) - float(spectral_loss(y_true, mask))

    # a mask that passes the noise too: exactly W x the squared excess over clean speech
    over = (noisy + 1e-6) ** 0.3 - (clean + 1e-6) ** 0.3
    assert extra(np.ones_like(clean), 3.0) == pytest.approx(3.0 * np.mean(over ** 2), rel=1e-4)
    # a mask that lands below the speech everywhere costs nothing more (that is distortion)
    below = (0.5 * clean / noisy).astype(np.float32)
    assert extra(below, 3.0) == pytest.approx(0.0, abs=1e-7)
    # the ideal mask costs nothing at all
    ideal = (clean / noisy).astype(np.float32)
    assert float(spectral_loss_weighted(0.0, 3.0)(y_true, ideal)) == pytest.approx(0.0, abs=1e-6)

    out = tmp_path / "rw"
    assert main(train_args("cr-ced", tiny_mix, out, extra=["--from", str(tiny_runs["cr-ced"]),
                                                             "--residual-weight", "0.5"])) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["residual_weight"] == 0.5 and cfg["distortion_weight"] == 0.0
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "rwq", extra=["--qat", "--from", str(out)])) == 0
    assert json.loads((tmp_path / "rwq" / "config.json").read_text())["residual_weight"] == 0.5
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "neg", extra=["--residual-weight", "11"])) == 2


def test_monitor_val_pesq_picks_the_best_epoch_by_pesq(tiny_mix, tmp_path, monkeypatch):
    """PESQ is made to peak at the middle of three epochs: best.weights.h5 must then be
    the model that produced that epoch's dev output, not the last epoch's (where a short
    run's validation loss usually bottoms)."""
    import numpy as np

    import runtime.metrics
    from runtime.audio_io import read_audio
    from runtime.stream import DEFAULT_MIN_GAIN_DB
    from training.enhance import enhance
    from training.pipeline import read_manifest
    from training.run_dir import load_run

    script, outputs = [2.0, 3.0, 1.0], []

    def fake_pesq(reference, estimate, rate):
        outputs.append(np.array(estimate))
        return script[(len(outputs) - 1) // 2]  # two dev pairs per epoch

    monkeypatch.setattr(runtime.metrics, "pesq_score", fake_pesq)
    out = tmp_path / "pesq"
    args = train_args("cr-ced", tiny_mix, out, epochs=3, extra=["--monitor", "val_pesq", "--pesq-files", "2"])
    args[args.index("--pesq-every") + 1] = "1"
    assert main(args) == 0
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_pesq"]) for r in rows] == script
    assert json.loads((out / "config.json").read_text())["monitor"] == "val_pesq"

    best, spec, _ = load_run(out, "best")
    noisy, _ = read_audio(read_manifest(tiny_mix, "dev")[0]["noisy"])
    # the callback scores what runtime.denoise outputs: post-filter and -20 dB limit on
    got = enhance(best, noisy, spec, postfilter=True, min_gain_db=DEFAULT_MIN_GAIN_DB)
    np.testing.assert_allclose(got, outputs[2], atol=1e-5)  # epoch 2, first dev pair
    assert np.abs(got - outputs[4]).max() > 1e-4            # not the last epoch's model
    bad = train_args("cr-ced", tiny_mix, tmp_path / "bad", extra=["--monitor", "val_pesq"])
    assert main(bad) == 2  # PESQ is not computed every epoch


def test_postfilter_loss_scores_the_mask_the_runtime_applies(tiny_runs, tiny_mix, tmp_path):
    """With --postfilter-loss wiener the loss sees mask x post-filter factor, as the
    runtime applies it, gradient included; the targets carry the factors a stream would
    apply; a fine-tune records the choice and its QAT keeps it."""
    import numpy as np
    import tensorflow as tf

    from runtime import dsp
    from runtime.spec import FeatureSpec
    from training import pipeline
    from training.train import spectral_loss, spectral_loss_weighted

    rng = np.random.default_rng(2)
    clean = rng.uniform(0.1, 1.0, (4, 129)).astype(np.float32)
    noisy = clean + rng.uniform(0.1, 1.0, (4, 129)).astype(np.float32)
    gain = rng.uniform(0.1, 1.0, (4, 129)).astype(np.float32)
    y_true = np.concatenate([clean, noisy, gain], axis=-1)
    loss = spectral_loss_weighted(0.0, 0.0, postfilter=True)
    mask = tf.Variable(rng.uniform(0.0, 1.0, (4, 129)).astype(np.float32))
    with tf.GradientTape() as tape:
        value = loss(y_true, mask)
    grad = tape.gradient(value, mask).numpy()
    filtered = mask.numpy() * gain
    assert float(value) == pytest.approx(float(spectral_loss(y_true[:, :258], filtered)), rel=1e-5)
    applied = tf.Variable(filtered)
    with tf.GradientTape() as tape:
        plain = spectral_loss(y_true[:, :258], applied)
    # chain rule through the product: the factor scales the gradient bin by bin
    np.testing.assert_allclose(grad, tape.gradient(plain, applied).numpy() * gain, rtol=1e-4, atol=1e-9)
    # the distortion price is taken on the post-filtered mask too
    both = spectral_loss_weighted(1.0, 0.0, postfilter=True)
    extra = np.mean(((filtered * clean + 1e-6) ** 0.3 - (clean + 1e-6) ** 0.3) ** 2)
    assert float(both(y_true, mask)) - float(value) == pytest.approx(extra, rel=1e-4)

    rows = pipeline.read_manifest(tiny_mix, "train")[:1]
    spec = FeatureSpec.from_json((tiny_runs["cr-ced"] / "spec.json").read_text())
    cache = pipeline.SpectraCache(spec, tmp_path / "cache")
    ds = pipeline.make_dataset(rows, spec, cache, kind="cr-ced", batch_size=4, shuffle=False,
                               postfilter=True)
    _, target = next(iter(ds))
    noisy_mag = cache.get(rows[0])[0]
    expect = dsp.postfilter_gains(noisy_mag, spec)[:4]
    assert target.shape == (4, 3 * 129)
    assert np.allclose(target.numpy()[:, 258:], expect, atol=1e-3)  # cached as float16
    assert len(list(cache.dir.glob("*.postfilter-*.npy"))) == 1

    out = tmp_path / "pf"
    assert main(train_args("cr-ced", tiny_mix, out, extra=["--from", str(tiny_runs["cr-ced"]),
                                                             "--postfilter-loss", "wiener"])) == 0
    assert json.loads((out / "config.json").read_text())["postfilter_loss"] == "wiener"
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "pfq", extra=["--qat", "--from", str(out)])) == 0
    assert json.loads((tmp_path / "pfq" / "config.json").read_text())["postfilter_loss"] == "wiener"


def test_sisdr_term_equals_the_complex_computation_and_trains_a_crnn(tiny_runs, tiny_mix, tmp_path):
    """The SI-SDR term, computed from magnitudes and the cached phase cosines, equals
    SI-SDR computed on the complex masked-noisy and clean STFTs; it is scale invariant; a
    better mask scores higher; the pipeline carries the cosines; a CRNN trains with it and
    a CR-CED is refused."""
    import numpy as np
    import tensorflow as tf

    from runtime import dsp
    from runtime.spec import FeatureSpec
    from training import pipeline
    from training.losses import sisdr_db
    from training.train import spectral_loss, spectral_loss_weighted

    rng = np.random.default_rng(5)
    shape = (3, 20, 129)
    clean = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    noise = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    noisy = clean + 0.7 * noise
    mask = rng.uniform(0.0, 1.0, shape)
    est = mask * noisy
    dot = np.sum((est * np.conj(clean)).real, axis=(1, 2))
    target = dot[:, None, None] / np.sum(np.abs(clean) ** 2, axis=(1, 2))[:, None, None] * clean
    expect = 10 * np.log10(np.sum(np.abs(target) ** 2, axis=(1, 2)) /
                           np.sum(np.abs(est - target) ** 2, axis=(1, 2)))
    cos = pipeline.phase_cosine(noisy, clean)
    mags = [np.abs(a).astype(np.float32) for a in (noisy, clean)]
    got = sisdr_db(tf.constant(mask, tf.float32), *mags, cos).numpy()
    np.testing.assert_allclose(got, expect, atol=1e-3)
    doubled = sisdr_db(tf.constant(2 * mask, tf.float32), *mags, cos).numpy()
    np.testing.assert_allclose(doubled, got, atol=1e-3)  # scale invariant
    ideal = np.clip(np.abs(clean) / np.abs(noisy), 0, 1)
    assert np.all(sisdr_db(tf.constant(ideal, tf.float32), *mags, cos).numpy() > got + 1.0)

    # the loss subtracts W x the mean SI-SDR from the spectral loss
    y_true = np.concatenate([mags[1], mags[0], cos], axis=-1)
    loss = spectral_loss_weighted(0.0, 0.0, sisdr_weight=0.01)
    m = tf.constant(mask, tf.float32)
    assert float(loss(y_true, m)) == pytest.approx(
        float(spectral_loss(y_true[..., :258], m)) - 0.01 * float(np.mean(expect)), rel=1e-4)

    rows = pipeline.read_manifest(tiny_mix, "train")[:1]
    spec = FeatureSpec.from_json((tiny_runs["crnn"] / "spec.json").read_text())
    cache = pipeline.SpectraCache(spec, tmp_path / "cache")
    ds = pipeline.make_dataset(rows, spec, cache, kind="crnn", batch_size=1, shuffle=False,
                               seq_frames=50, phase=True)
    _, batch = next(iter(ds))
    assert batch.shape == (1, 50, 3 * 129)
    noisy_spec, clean_spec = pipeline.pair_spectra(rows[0], spec)
    direct = np.cos(np.angle(noisy_spec[:50]) - np.angle(clean_spec[:50]))
    loud = (np.abs(noisy_spec[:50]) * np.abs(clean_spec[:50])) > 1e-6
    np.testing.assert_allclose(batch.numpy()[0, :, 258:][loud], direct[loud], atol=2e-3)  # float16

    out = tmp_path / "sisdr"
    assert main(train_args("crnn", tiny_mix, out, extra=["--from", str(tiny_runs["crnn"]),
                                                          "--sisdr-weight", "0.001"])) == 0
    assert json.loads((out / "config.json").read_text())["sisdr_weight"] == 0.001
    assert np.isfinite(_losses(out)).all()
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "no", extra=["--sisdr-weight", "0.001"])) == 1
    assert main(train_args("crnn", tiny_mix, tmp_path / "big", extra=["--sisdr-weight", "2"])) == 2


@pytest.mark.parametrize("kind", ["crnn", "cr-ced"])
def test_band_extension_starts_the_wide_model_as_the_narrow_one(kind, tiny_runs, tiny_corpus, tmp_path):
    """--from an 8 kHz run with --preset wide16k: same bin spacing, so the 16 kHz model
    inherits every weight of the 8 kHz one for the old bins, with its own statistics."""
    import numpy as np

    from training.make_dataset import MixConfig, make_dataset
    from training.run_dir import load_run

    mix16 = tmp_path / "mix16"
    cfg = MixConfig(sample_rate=16000, snr_min=0, snr_max=10, seconds=1.0, seed=3,
                    dev_fraction=0.34, group_regex="^([a-z]+)_")
    make_dataset([tiny_corpus / "speech"], [tiny_corpus / "noise"], mix16, 12, cfg, progress=False)
    base = tiny_runs[kind]
    out = tmp_path / "wide"
    args = train_args(kind, mix16, out, extra=["--from", str(base), "--preset", "wide16k"])
    args[args.index("--lr") + 1] = "0"  # the weights stay as extend_band left them
    assert main(args) == 0
    wide, spec, config = load_run(out, "last")
    narrow, narrow_spec, _ = load_run(base)
    assert (spec.sample_rate, spec.n_fft, spec.n_bins) == (16000, 512, 257)
    assert len(spec.feature_mean) == 257 and spec.feature_mean[:129] != narrow_spec.feature_mean  # measured anew
    assert config["preset"] == "wide16k" and config["from"] == str(base)
    if kind == "crnn":
        lstm_old, lstm_new = narrow.get_layer("lstm").get_weights(), wide.get_layer("lstm").get_weights()
        for a, b in zip(lstm_old, lstm_new):
            np.testing.assert_array_equal(a, b)
        (k_old, b_old), (k_new, b_new) = (m.get_layer("mask").get_weights() for m in (narrow, wide))
        np.testing.assert_array_equal(k_new[:, :129], k_old)
        np.testing.assert_array_equal(k_new[:, 200], k_old[:, -1])
        p_old, p_new = narrow.get_layer("proj").get_weights()[0], wide.get_layer("proj").get_weights()[0]
        np.testing.assert_array_equal(p_new[:len(p_old)], p_old)
        assert not np.any(p_new[len(p_old):])
    else:
        k_old, k_new = (m.get_layer("mask_conv").get_weights()[0] for m in (narrow, wide))
        np.testing.assert_array_equal(k_new[64:193], k_old)
        assert not np.any(k_new[:64]) and not np.any(k_new[193:])
        np.testing.assert_array_equal(narrow.get_layer("b4_2_conv").get_weights()[0],
                                      wide.get_layer("b4_2_conv").get_weights()[0])
    # a grid of another bin spacing cannot be band-extended; QAT never changes the grid
    assert main(train_args(kind, mix16, tmp_path / "bad", extra=["--from", str(base), "--preset", "seed16k"])) == 1
    assert main(train_args(kind, mix16, tmp_path / "bad2",
                           extra=["--from", str(base), "--preset", "wide16k", "--qat"])) == 1


def test_training_commands_name_their_output_with_o_or_out():
    from export import to_tflite
    from training import train, tune

    for parser, rest in ((train.build_parser(), ["--data", "d"]),
                         (tune.build_parser(), ["--data", "d", "--model", "crnn"]),
                         (to_tflite.build_parser(), ["run"])):
        for flag in ("-o", "--out"):
            assert parser.parse_args([*rest, flag, "target"]).out == "target", parser.prog


def test_two_writers_of_one_spectra_cache_do_not_break_each_other(tiny_mix, tmp_path, monkeypatch):
    """Two trainings on one data folder fill one cache: a writer that finishes between the
    other's write and rename must not take the other's file away (it did: both used one
    temporary name, and the second run died with FileNotFoundError)."""
    import pathlib

    import numpy as np

    from runtime.spec import FeatureSpec
    from training import pipeline

    spec = FeatureSpec()
    row = pipeline.read_manifest(tiny_mix, "train")[0]
    first, second = pipeline.SpectraCache(spec, tmp_path / "c"), pipeline.SpectraCache(spec, tmp_path / "c")
    real_replace, raced = pathlib.Path.replace, {}

    def replace_after_the_other_writer(self, target):
        if "other" not in raced:  # the first rename: let the other writer do all of its work now
            raced["other"] = None
            raced["other"] = second.get(row)
        return real_replace(self, target)

    monkeypatch.setattr(pathlib.Path, "replace", replace_after_the_other_writer)
    noisy, clean = first.get(row)
    assert np.array_equal(raced["other"][0], noisy) and np.array_equal(raced["other"][1], clean)
    assert [p.suffix for p in first.dir.iterdir()] == [".npz"]  # no temporary file left behind
    monkeypatch.undo()
    again = pipeline.SpectraCache(spec, tmp_path / "c").get(row)
    assert np.array_equal(again[0], noisy)


def test_kept_epochs_average_into_a_run_that_exports(tiny_mix, tmp_path, capsys):
    """--keep-epochs numbers the files as Keras counts epochs, across a resume too, and
    training.average_weights writes their exact mean as a run export reads."""
    import numpy as np

    from export.to_tflite import main as export_main
    from training.average_weights import main as average_main
    from training.run_dir import build_run_model, load_run

    run = tmp_path / "run"
    assert main(train_args("crnn", tiny_mix, run, epochs=2, extra=["--keep-epochs"])) == 0
    assert main(train_args("crnn", tiny_mix, run, epochs=3, extra=["--keep-epochs", "--resume"])) == 0
    kept = sorted(p.name for p in (run / "epochs").iterdir())
    assert kept == ["epoch_001.weights.h5", "epoch_002.weights.h5", "epoch_003.weights.h5"]

    model, _, _ = build_run_model(run)
    per_epoch = []
    for name in kept[1:]:
        model.load_weights(str(run / "epochs" / name))
        per_epoch.append(model.get_weights())
    # the last kept epoch is the run's last weights
    last, _, _ = load_run(run, "last")
    assert all(np.array_equal(a, b) for a, b in zip(last.get_weights(), per_epoch[-1]))

    out = tmp_path / "avg"
    assert average_main([str(run), "--epochs", "2-3", "-o", str(out)]) == 0
    averaged, _, cfg = load_run(out)
    assert cfg["averaged_from"]["epochs"] == [2, 3]
    moved = 0
    for got, a, b in zip(averaged.get_weights(), *per_epoch):
        np.testing.assert_allclose(got, (a.astype(np.float64) + b) / 2, rtol=1e-6, atol=1e-7)
        moved += not np.array_equal(a, b)
    assert moved > 0  # the two epochs differ, so the mean is a new point
    assert export_main([str(out), "--quant", "float32", "-o", str(tmp_path / "avg.tflite")]) == 0
    assert (tmp_path / "avg.tflite").stat().st_size > 0

    # an epoch that was not kept, a bad range, and an existing output are one-line errors
    capsys.readouterr()
    assert average_main([str(run), "--epochs", "3-5", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "epoch 4" in err and "1-3" in err
    assert average_main([str(run), "--epochs", "3-1", "-o", str(tmp_path / "x")]) == 2
    assert average_main([str(run), "--epochs", "2-3", "-o", str(out)]) == 2
    assert average_main([str(run), "--epochs", "3", "-o", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_lookahead_grows_from_a_run_trains_on_later_targets_and_exports(tiny_runs, tiny_mix, tmp_path, capsys):
    """--from RUN --lookahead 1: the spec carries the lookahead (one hop more latency), the
    targets are a frame later than the features, and the export streams with its delay
    line state, equal to the Keras model within float rounding."""
    import numpy as np

    from export.to_tflite import export
    from runtime.model_file import read_spec
    from training import pipeline

    out = tmp_path / "ahead"
    assert main(train_args("crnn", tiny_mix, out, extra=["--from", str(tiny_runs["crnn"]),
                                                         "--lookahead", "1"])) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["size"]["lookahead"] == 1
    spec = pipeline.FeatureSpec.from_json((out / "spec.json").read_text())
    assert spec.lookahead_frames == 1
    rows = pipeline.read_manifest(tiny_mix, "dev")[:1]
    cache = pipeline.SpectraCache(spec, tmp_path / "cache")
    noisy, clean = cache.get(rows[0])
    ds = pipeline.make_dataset(rows, spec, cache, kind="crnn", batch_size=1, shuffle=False, seq_frames=40)
    feats, target = next(iter(ds))
    bins = spec.n_bins
    np.testing.assert_allclose(feats[0].numpy(), pipeline.dsp.features(noisy, spec)[:40], atol=1e-6)
    assert np.all(target[0, 0].numpy() == 0)  # nothing is asked of the first output
    np.testing.assert_allclose(target[0, 1:, :bins].numpy(), clean[:39], atol=1e-6)
    np.testing.assert_allclose(target[0, 1:, bins:2 * bins].numpy(), noisy[:39], atol=1e-6)
    report = export(out, "float32", tmp_path / "ahead.tflite")
    assert report["max_scaled_error"] < 1e-4
    got = read_spec(tmp_path / "ahead.tflite")
    assert got.lookahead_frames == 1 and got.latency_samples == got.n_fft
    assert got.state_shapes["look"] == [1, 33 * 16]  # 129 bins, 65 then 33 after the two stride-2 convs; 16 channels
    # once is enough, and it does not combine with the input skip or CR-CED
    assert main(train_args("crnn", tiny_mix, tmp_path / "twice", extra=["--from", str(out), "--lookahead", "1"])) == 1
    assert "already looks ahead" in capsys.readouterr().err
    assert main(train_args("crnn", tiny_mix, tmp_path / "skip", extra=["--lookahead", "1", "--input-skip"])) == 1
    assert main(train_args("cr-ced", tiny_mix, tmp_path / "ced", extra=["--lookahead", "1"])) == 1
    assert main(train_args("crnn", tiny_mix, tmp_path / "far", extra=["--lookahead", "9"])) == 1
