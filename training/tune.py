"""Bayesian hyperparameter search over training.train with Optuna.

    python -m training.tune --model crnn --data data/mix8k --out tune/crnn --trials 20
    python -m training.tune ... --resume                 # continue the same study
    python -m training.train --config tune/crnn/best.json --data data/mix8k --out runs/best

Each trial is a short training run through the same code (a TrainConfig, in this process),
on a spectra cache shared by all trials. The TPE sampler proposes settings, a median
pruner stops trials whose per-epoch objective falls behind the others', and the study lives
in an RDB storage (SQLite in TUNE_DIR by default; a PostgreSQL/MySQL URL lets several
machines share one study). TUNE_DIR gets trials.csv, best.json and two plots.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

from runtime.errors import DenoiseError
from runtime.spec import PRESETS

from .config import KINDS, TrainConfig

#: Default search spaces. float/int: low, high, optional log; categorical: choices.
COMMON_SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
    "lr_decay_epochs": {"type": "int", "low": 2, "high": 10},
    "lr_decay": {"type": "float", "low": 0.3, "high": 0.9},
    "distortion_weight": {"type": "float", "low": 0.0, "high": 3.0},
    "residual_weight": {"type": "float", "low": 0.0, "high": 1.0},
}
SPACES = {
    "crnn": {**COMMON_SPACE,
             "batch_size": {"type": "categorical", "choices": [8, 16, 32]},
             "units": {"type": "categorical", "choices": [64, 128, 192, 256]},
             "proj": {"type": "categorical", "choices": [64, 128, 192]},
             "channels": {"type": "categorical", "choices": ["8,8", "16,16", "16,32"]}},
    "cr-ced": {**COMMON_SPACE,
               "batch_size": {"type": "categorical", "choices": [128, 256, 512]}},
}
OBJECTIVES = {"val_loss": "minimize", "val_pesq": "maximize"}
STUDY_NAME = "tiny-denoise"


def load_space(kind: str, path: str | None) -> dict:
    """The model's default space, or a JSON file of the same shape (it replaces the
    default; parameters are TrainConfig fields)."""
    if not path:
        return SPACES[kind]
    try:
        space = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DenoiseError(f"{path}: cannot read a search space ({exc})") from None
    known = set(TrainConfig.field_names())
    for name, dist in space.items():
        if name not in known:
            raise DenoiseError(f"{path}: {name!r} is not a training setting")
        kind_ = dist.get("type")
        if kind_ == "categorical" and dist.get("choices"):
            continue
        if kind_ in ("float", "int") and "low" in dist and "high" in dist and dist["low"] <= dist["high"]:
            continue
        raise DenoiseError(f"{path}: {name}: want {{type: float|int, low, high[, log]}} or "
                           f"{{type: categorical, choices: [...]}}, got {dist}")
    return space


def load_enqueued(path, space: dict) -> dict:
    """Settings for the study's first trial (e.g. the recipe in use today), one value per
    parameter of the space, so trials.csv says whether the search beats them."""
    try:
        params = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DenoiseError(f"{path}: cannot read a JSON object of parameters ({exc})") from None
    if not isinstance(params, dict) or set(params) != set(space):
        raise DenoiseError(f"{path}: give exactly the space's parameters: {', '.join(sorted(space))}")
    for name, dist in space.items():
        value = params[name]
        ok = value in dist["choices"] if dist["type"] == "categorical" else \
            isinstance(value, (int, float)) and dist["low"] <= value <= dist["high"]
        if not ok:
            raise DenoiseError(f"{path}: {name}={value!r} is outside the search space ({dist})")
    return params


def suggest(trial, space: dict) -> dict:
    params = {}
    for name, dist in space.items():
        if dist["type"] == "float":
            params[name] = trial.suggest_float(name, dist["low"], dist["high"], log=dist.get("log", False))
        elif dist["type"] == "int":
            params[name] = trial.suggest_int(name, dist["low"], dist["high"], log=dist.get("log", False))
        else:
            params[name] = trial.suggest_categorical(name, dist["choices"])
    return params


class _Pruning:
    """Reports the objective after every epoch and stops the trial when the pruner says.
    (optuna-integration's Keras callback targets Keras 3; the runs here are tf-keras.)"""

    def __new__(cls, trial, objective: str):
        import optuna
        import tf_keras as keras

        class _Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                value = (logs or {}).get(objective)
                if value is None or not math.isfinite(value):
                    return
                trial.report(float(value), step=epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch + 1}: {objective} {value:.4f}")

        return _Callback()


def base_config(args, trial_dir: Path) -> TrainConfig:
    return TrainConfig(data=args.data, out=str(trial_dir), model=args.model, epochs=args.epochs,
                       steps_per_epoch=args.steps_per_epoch, validation_steps=args.validation_steps,
                       seq_frames=args.seq_frames, patience=args.epochs,
                       pesq_every=1 if args.objective == "val_pesq" else 0,
                       pesq_files=args.pesq_files, monitor=args.objective,
                       cache=str(Path(args.out) / "spectra_cache"), seed=args.seed,
                       verbose=args.verbose, wandb=args.wandb, preset=args.preset)


def run_study(args) -> "optuna.Study":  # noqa: F821
    import optuna

    from .train import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    existing = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if STUDY_NAME in existing and not args.resume:
        raise DenoiseError(f"{out} (or {storage}) already holds a study; pass --resume to continue it")
    space = load_space(args.model, args.space)
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, load_if_exists=True,
                                direction=OBJECTIVES[args.objective],
                                sampler=optuna.samplers.TPESampler(seed=args.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    if not existing:
        study.set_user_attr("model", args.model)
        study.set_user_attr("objective", args.objective)
        if args.enqueue:
            study.enqueue_trial(load_enqueued(args.enqueue, space), user_attrs={"enqueued": True})
    elif study.user_attrs.get("model") != args.model or study.user_attrs.get("objective") != args.objective:
        raise DenoiseError(f"the study in {storage} is for --model {study.user_attrs.get('model')} "
                           f"--objective {study.user_attrs.get('objective')}")
    # trials killed with the search: fail them and run their settings again
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params)
        print(f"trial {t.number} was interrupted: its settings run again", file=sys.stderr)

    def objective(trial):
        params = suggest(trial, space)
        trial_dir = out / "trials" / f"{trial.number:04d}"
        config = TrainConfig.from_dict({**base_config(args, trial_dir).to_dict(), **params})
        if config.model != "crnn":  # only the CRNN has a size to search
            for name in ("units", "proj", "channels"):
                setattr(config, name, None)
        trial.set_user_attr("config", {k: v for k, v in config.to_dict().items() if k not in ("data", "out")})
        start = time.time()
        try:
            summary = train(config, extra_callbacks=[_Pruning(trial, args.objective)])
        finally:
            trial.set_user_attr("seconds", round(time.time() - start, 1))
        values = summary["history"].get(args.objective)
        if not values:
            raise DenoiseError(f"trial {trial.number}: no {args.objective} logged")
        return (min if args.objective == "val_loss" else max)(values)

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # failed ones run again
    finished = len([t for t in study.trials if t.state in done])
    remaining = max(0, args.trials - finished)
    if remaining:
        print(f"study {STUDY_NAME} in {storage}: {finished} trials finished, {remaining} to run",
              file=sys.stderr)
        study.optimize(objective, n_trials=remaining, catch=(DenoiseError,))
    return study


def write_results(study, out: Path, objective: str) -> dict:
    """trials.csv, best.json and the plots; returns best.json's content."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    with open(out / "trials.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", *names, objective, "state", "seconds", "enqueued"])
        for t in trials:
            writer.writerow([t.number, *[t.params.get(n, "") for n in names],
                             "" if t.value is None else f"{t.value:.6f}", t.state.name,
                             t.user_attrs.get("seconds", ""), "yes" if t.user_attrs.get("enqueued") else ""])
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise DenoiseError("no trial completed; see the messages above")
    best = study.best_trial
    result = {"trial": best.number, objective: best.value, "params": best.params,
              "config": {k: v for k, v in best.user_attrs["config"].items()
                         if k not in ("cache", "resume", "wandb", "verbose")}}
    (out / "best.json").write_text(json.dumps(result, indent=2))
    _plots(study, out, objective, names)
    return result


def _plots(study, out: Path, objective: str, names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    trials = study.get_trials(deepcopy=False)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for state, style in ((optuna.trial.TrialState.COMPLETE, dict(color="tab:blue", marker="o")),
                         (optuna.trial.TrialState.PRUNED, dict(color="tab:grey", marker="x"))):
        pts = [(t.number, t.value if t.value is not None else t.intermediate_values.get(
            max(t.intermediate_values), None) if t.intermediate_values else None) for t in trials if t.state == state]
        pts = [p for p in pts if p[1] is not None]
        if pts:
            ax.scatter(*zip(*pts), label=state.name.lower(), **style)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best, front = None, []
    for t in done:
        if best is None or (t.value < best if objective == "val_loss" else t.value > best):
            best = t.value
        front.append((t.number, best))
    if front:
        ax.step(*zip(*front), where="post", color="tab:green", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "objective_by_trial.png", dpi=110)
    plt.close(fig)
    if len(done) >= 2 and names:
        try:
            importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):  # too few distinct trials to fit
            importance = {}
        if importance:
            fig, ax = plt.subplots(figsize=(6, 0.4 * len(importance) + 1))
            keys = list(importance)[::-1]
            ax.barh(keys, [importance[k] for k in keys], color="tab:blue")
            ax.set_xlabel(f"importance for {objective} (fANOVA)")
            fig.tight_layout()
            fig.savefig(out / "param_importances.png", dpi=110)
            plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.tune",
                                description="Bayesian (Optuna TPE) search over training settings, with "
                                            "median pruning; resumable and shareable through an RDB storage.")
    p.add_argument("--model", choices=KINDS, required=True)
    p.add_argument("--data", required=True, help="manifest dir (training.make_dataset) with a dev split")
    p.add_argument("-o", "--out", required=True, metavar="TUNE_DIR",
                   help="study folder: study.db, trials/, trials.csv, best.json, plots")
    p.add_argument("--trials", type=int, default=20, help="trials in the study in all (default 20)")
    p.add_argument("--space", default=None, metavar="SPACE.json", help="search space replacing the default")
    p.add_argument("--objective", choices=list(OBJECTIVES), default="val_loss",
                   help="per-epoch metric to optimise (val_pesq scores --pesq-files dev pairs)")
    p.add_argument("--resume", action="store_true", help="continue the study in TUNE_DIR (or --storage)")
    p.add_argument("--enqueue", default=None, metavar="PARAMS.json",
                   help="run these settings (one value per parameter of the space, e.g. your current "
                        "recipe) as the first trial, so the table shows whether the search beats them")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna RDB storage (default sqlite:///TUNE_DIR/study.db; postgresql://... "
                        "or mysql://... lets several machines run one study)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per trial (default 4)")
    p.add_argument("--steps-per-epoch", type=int, default=100, help="batches per epoch (default 100)")
    p.add_argument("--validation-steps", type=int, default=20, help="validation batches (default 20)")
    p.add_argument("--seq-frames", type=int, default=250, help="CRNN sequence length")
    p.add_argument("--pesq-files", type=int, default=20, help="dev pairs for val_pesq (default 20)")
    p.add_argument("--preset", default="paper8k", choices=sorted(PRESETS), help="feature preset (default paper8k)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=2, help="Keras verbosity per trial (default 2)")
    p.add_argument("--wandb", default=None, metavar="PROJECT",
                   help="log every trial to Weights & Biases (offline unless WANDB_MODE says otherwise)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.trials < 1 or args.epochs < 1:
        print("error: --trials and --epochs must be at least 1", file=sys.stderr)
        return 2
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("error: training.tune needs Optuna: pip install -e \".[train]\"", file=sys.stderr)
        return 1
    try:
        study = run_study(args)
        best = write_results(study, Path(args.out), args.objective)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"best trial {best['trial']}: {args.objective} {best[args.objective]:.4f} with {best['params']}")
    print(f"-> {args.out}/trials.csv, best.json, objective_by_trial.png; train it with: "
          f"python -m training.train --config {args.out}/best.json --data {args.data} --out RUN_DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
