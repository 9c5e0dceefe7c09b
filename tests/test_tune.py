"""training.tune (Optuna) and TrainConfig: trials, resume, pruning, best.json, tracking."""
import csv
import json
import os

import pytest

from .conftest import needs_modules

needs_optuna = needs_modules("optuna", extra="train")

TRIAL = ["--epochs", "2", "--steps-per-epoch", "3", "--validation-steps", "1", "--seq-frames", "40",
         "--verbose", "0"]


def _space(tmp_path):
    """A small space so three trials take seconds (and one may be pruned)."""
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
                                "units": {"type": "categorical", "choices": [8, 16]},
                                "proj": {"type": "categorical", "choices": [8]},
                                "channels": {"type": "categorical", "choices": ["4,4"]},
                                "batch_size": {"type": "categorical", "choices": [4, 8]}}))
    return path


def _rows(out):
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


@needs_optuna
def test_three_trials_write_the_table_and_best_json_and_resume_continues(tiny_mix, tmp_path):
    import optuna

    from training.tune import STUDY_NAME, main

    out = tmp_path / "tune"
    args = ["--model", "crnn", "--data", str(tiny_mix), "--out", str(out), "--space", str(_space(tmp_path)), *TRIAL]
    assert main([*args, "--trials", "2"]) == 0
    assert main([*args, "--trials", "3"]) == 1  # a study is there: --resume or another folder
    # a search killed mid-trial leaves a RUNNING trial behind
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{(out / 'study.db').resolve()}")
    first = {t.number: t.params for t in study.trials}
    killed = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 3e-3, log=True)})
    assert main([*args, "--trials", "4", "--resume"]) == 0
    rows = _rows(out)
    states = {int(r["number"]): r["state"] for r in rows}
    assert states[killed.number] == "FAIL"
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 4
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{(out / 'study.db').resolve()}")
    for number, params in first.items():  # finished trials were not run again
        assert study.trials[number].params == params and study.trials[number].state.is_finished()
    assert study.trials[killed.number + 1].params["lr"] == pytest.approx(killed.params["lr"])  # re-run
    best = json.loads((out / "best.json").read_text())
    assert best["config"]["model"] == "crnn" and "lr" in best["params"]
    assert (out / "objective_by_trial.png").stat().st_size > 1000
    assert {"number", "lr", "units", "val_loss", "state", "seconds"} <= set(rows[0])


@needs_optuna
def test_best_json_trains_for_real_with_the_flags_overriding(tiny_mix, tmp_path):
    from training.run_dir import load_run
    from training.train import main

    best = tmp_path / "best.json"
    best.write_text(json.dumps({"trial": 0, "params": {"lr": 1e-3},
                                "config": {"model": "crnn", "lr": 1e-3, "units": 8, "proj": 8,
                                           "channels": "4,4", "batch_size": 4, "epochs": 5,
                                           "pesq_every": 0, "seq_frames": 40}}))
    run = tmp_path / "run"
    assert main(["--config", str(best), "--data", str(tiny_mix), "--out", str(run), "--epochs", "1",
                 "--steps-per-epoch", "2", "--validation-steps", "1", "--verbose", "0"]) == 0
    _, _, cfg = load_run(run)
    assert cfg["size"]["units"] == 8 and cfg["epochs"] == 1 and cfg["batch_size"] == 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rate": 1}))
    assert main(["--config", str(bad), "--data", str(tiny_mix), "--out", str(tmp_path / "x")]) == 2


@needs_optuna
def test_a_pruned_trial_is_recorded_as_pruned(tiny_mix, tmp_path, monkeypatch):
    import optuna

    from training import tune

    class PruneTheSecond(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number == 1

    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **kw: PruneTheSecond())
    out = tmp_path / "tune"
    assert tune.main(["--model", "crnn", "--data", str(tiny_mix), "--out", str(out),
                      "--space", str(_space(tmp_path)), "--trials", "2", *TRIAL]) == 0
    states = [r["state"] for r in _rows(out)]
    assert states == ["COMPLETE", "PRUNED"]


def test_train_config_defaults_match_the_command_line(tmp_path):
    from training.config import TrainConfig
    from training.train import parse_config

    assert parse_config(["--data", "d", "--out", "o"]) == TrainConfig(data="d", out="o")
    cfg = parse_config(["--data", "d", "--out", "o", "--lr", "0.01", "--model", "crnn"])
    assert cfg.lr == 0.01 and cfg.model == "crnn"
    assert TrainConfig("d", "o", distortion_weight=None).inherited({"distortion_weight": 2.0}) == \
        {"distortion_weight": 2.0, "residual_weight": 0.0, "postfilter_loss": "none", "sisdr_weight": 0.0}
    assert TrainConfig("d", "o", distortion_weight=1.0).inherited({"distortion_weight": 2.0})["distortion_weight"] == 1.0


def test_train_is_callable_from_python_with_a_config(tiny_mix, tmp_path):
    from training.train import TrainConfig, train

    summary = train(TrainConfig(data=str(tiny_mix), out=str(tmp_path / "r"), model="crnn", epochs=1,
                                batch_size=4, steps_per_epoch=2, validation_steps=1, seq_frames=40,
                                pesq_every=0, units=8, proj=8, channels="4,4", verbose=0))
    assert summary["epochs_run"] == 1 and (tmp_path / "r" / "best.weights.h5").is_file()


@needs_modules("wandb", extra="track")
def test_wandb_offline_writes_a_run_with_the_metrics(tiny_mix, tmp_path, monkeypatch):
    from training.train import TrainConfig, train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    summary = train(TrainConfig(data=str(tiny_mix), out=str(tmp_path / "r"), model="crnn", epochs=2,
                                batch_size=4, steps_per_epoch=2, validation_steps=1, seq_frames=40,
                                pesq_every=0, units=8, proj=8, channels="4,4", verbose=0,
                                wandb="tiny-denoise-test"))
    run_dir = summary["wandb_dir"]
    assert os.path.basename(run_dir).startswith("offline-run-")
    assert any(name.endswith(".wandb") for name in os.listdir(run_dir))
    # the run log holds the metrics as protobuf records with JSON values (read as bytes here:
    # wandb ships no reader for it; `wandb sync` uploads it)
    raw = open(next(os.path.join(run_dir, n) for n in os.listdir(run_dir) if n.endswith(".wandb")), "rb").read()
    for value in summary["history"]["val_loss"]:  # every epoch's validation loss
        assert json.dumps(value).encode() in raw
    assert b"best_val_loss" in raw and b"macs_per_frame" in raw and b"tiny-denoise-test" in raw


@needs_optuna
def test_enqueued_settings_run_first_and_are_marked(tiny_mix, tmp_path):
    from training.tune import main

    recipe = {"lr": 1e-3, "units": 16, "proj": 8, "channels": "4,4", "batch_size": 8}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    out = tmp_path / "tune"
    args = ["--model", "crnn", "--data", str(tiny_mix), "--out", str(out), "--space", str(_space(tmp_path)),
            *TRIAL, "--trials", "2"]
    assert main([*args, "--enqueue", str(tmp_path / "recipe.json")]) == 0
    rows = _rows(out)
    assert rows[0]["enqueued"] == "yes" and not rows[1]["enqueued"]
    assert float(rows[0]["lr"]) == 1e-3 and rows[0]["units"] == "16"
    (tmp_path / "bad.json").write_text(json.dumps({**recipe, "units": 999}))
    assert main([*args, "--out", str(tmp_path / "t2"), "--enqueue", str(tmp_path / "bad.json")]) == 1
