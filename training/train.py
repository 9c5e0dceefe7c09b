"""Train CR-CED or the CRNN on a manifest directory; optionally fine-tune with QAT.

    python -m training.train --model cr-ced --data data/mix --out runs/cr_ced
    python -m training.train --qat --from runs/cr_ced --data data/mix --out runs/cr_ced_qat
    python -m training.train --from runs/crnn --data data/my_mix --out runs/crnn_mine

--from without --qat fine-tunes a finished float run (its architecture, size and feature
normalisation are kept) on new data, e.g. your own noise. --config FILE reads the settings
from JSON (e.g. training.tune's best.json); from Python, train(TrainConfig(...)).

The run directory's format is training.run_dir's; the losses are training.losses', the
per-epoch quality callback training.callbacks'.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from runtime.errors import DenoiseError  # noqa: E402
from runtime.spec import MAX_LOOKAHEAD_FRAMES, PRESETS, FeatureSpec, preset  # noqa: E402

from .callbacks import QualityCallback  # noqa: E402
from .losses import magnitude_loss, spectral_loss, spectral_loss_weighted  # noqa: E402,F401
from .run_dir import epochs_logged, load_run  # noqa: E402,F401  (load_run: older imports)

from .config import KINDS, TrainConfig  # noqa: E402,F401


def strategy_for(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def crnn_size(args, kind: str) -> dict:
    """The CRNN size options given on the command line (empty: the defaults)."""
    given = {k: v for k, v in (("units", args.units), ("proj", args.proj), ("units2", args.units2),
                               ("channels", args.channels),
                               ("input_skip", True if args.input_skip else None),
                               ("pool_above_hz", args.pool_above),
                               ("lookahead", args.lookahead or None)) if v is not None}
    if (given or args.new_front_end) and kind != "crnn":
        raise DenoiseError("--units/--units2/--proj/--channels/--input-skip/--pool-above/--lookahead/"
                           "--new-front-end shape the CRNN; CR-CED's size is fixed by the paper")
    if args.lookahead is not None and not 0 <= args.lookahead <= MAX_LOOKAHEAD_FRAMES:
        raise DenoiseError(f"--lookahead wants 0 to {MAX_LOOKAHEAD_FRAMES} frames, got {args.lookahead}")
    if args.lookahead and args.input_skip:
        raise DenoiseError("--lookahead and --input-skip don't combine: the skip feeds the newest "
                           "frame to a mask that is for an older one")
    if args.units2 is not None and args.units2 < 0:
        raise DenoiseError(f"--units2 wants 0 (one LSTM) or more units, got {args.units2}")
    if args.pool_above is not None and args.pool_above <= 0:
        raise DenoiseError(f"--pool-above wants a frequency in Hz above 0, got {args.pool_above}")
    if "channels" in given:
        try:
            given["channels"] = [int(c) for c in given["channels"].split(",")]
        except ValueError:
            raise DenoiseError(f"--channels wants comma-separated integers, got {args.channels!r}") from None
    return given


def _same_grid(a: FeatureSpec, b: FeatureSpec) -> bool:
    return (a.sample_rate, a.n_fft, a.hop, a.window) == (b.sample_rate, b.n_fft, b.hop, b.window)


def _wider_grid(spec: FeatureSpec, args) -> FeatureSpec:
    """The spec of a band extension of a --from run to --preset, or why there can't be one."""
    target = preset(args.preset)
    if args.qat:
        raise DenoiseError("--qat keeps the --from run's grid; band-extend first, then QAT that run")
    same_bins = target.sample_rate * spec.n_fft == spec.sample_rate * target.n_fft
    same_hop = target.hop * spec.sample_rate == spec.hop * target.sample_rate
    if not (same_bins and same_hop and target.window == spec.window) or target.n_bins <= spec.n_bins:
        # another hop was tried (512/256 from paper8k): the recurrence, tuned to the old
        # frame rate, lost STOI (benchmarks/README.md), so only the same grid is extended
        raise DenoiseError(
            f"--preset {args.preset} ({target.n_fft} points, hop {target.hop} at {target.sample_rate} Hz) "
            f"is not a wider band on the bins and hop of {args.from_run} ({spec.n_fft} points, hop "
            f"{spec.hop} at {spec.sample_rate} Hz)")
    return target.replace(model_kind=spec.model_kind, context_frames=spec.context_frames,
                          output_kind=spec.output_kind)


def train(args: TrainConfig, extra_callbacks=()) -> dict:
    """Train (or fine-tune, or QAT) as ``args`` says and write RUN_DIR; extra Keras
    callbacks (e.g. a tuner's pruning) run after the run's own. Returns a summary."""
    import tensorflow as tf
    import tf_keras as keras

    if not isinstance(args, TrainConfig):  # an argparse Namespace of the same fields
        args = TrainConfig.from_dict({k: getattr(args, k) for k in TrainConfig.field_names()
                                      if hasattr(args, k)})
    args.validate()

    from . import pipeline
    from .models import CRNN_DEFAULTS, build, extend_band, grow_crnn, keep_back_end, macs_per_frame

    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    backup = out / "backup"
    if backup.exists() and any(backup.iterdir()) and not args.resume:
        raise DenoiseError(f"{out} holds an unfinished run; pass --resume or choose another --out")
    if (out / "config.json").exists() and not args.resume:
        raise DenoiseError(f"{out} already holds a run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    train_rows = pipeline.read_manifest(args.data, "train")
    dev_rows = pipeline.read_manifest(args.data, "dev")
    if not train_rows:
        raise DenoiseError(f"{args.data}: manifest has no 'train' rows")
    if not dev_rows:  # no held-out split: validate on a slice of train, and say so
        print("warning: no 'dev' split in the manifest; validating on 10% of train", file=sys.stderr)
        cut = max(1, len(train_rows) // 10)
        dev_rows, train_rows = train_rows[:cut], train_rows[cut:] or train_rows

    size = {}
    base_model = None
    widen = new_front = False
    if args.new_front_end and not args.from_run:
        raise DenoiseError("--new-front-end keeps the LSTM of a --from run: give --from RUN_DIR")
    if args.from_run:
        base_model, spec, base_cfg = load_run(args.from_run)
        if args.preset and not _same_grid(spec, preset(args.preset)):
            spec, widen = _wider_grid(spec, args), True
        kind, size = base_cfg["model"], base_cfg.get("size", {})
        if base_cfg.get("qat"):
            raise DenoiseError(f"{args.from_run} is already a QAT run; start from its float run")
        if args.qat and spec.output_kind != "mask":
            raise DenoiseError(f"{args.from_run} predicts magnitudes: int8 (and so QAT) needs the "
                               f"bounded mask output (--target mask)")
        if args.model and args.model != kind:
            raise DenoiseError(f"--model {args.model} but {args.from_run} holds a {kind} model")
        grow = crnn_size(args, kind)
        new_front = args.new_front_end or "pool_above_hz" in grow
        if new_front:
            if args.qat or widen or set(grow) - {"pool_above_hz"}:
                raise DenoiseError("--new-front-end/--pool-above with --from re-learn the encoder and "
                                   "projection of a float fine-tune: give no --qat, --preset or other size")
            size = {**size, **grow}
            grow = {}
        if grow and widen:
            raise DenoiseError("band-extend (--preset) and grow (--units/--proj) in separate runs")
        if grow:
            if args.qat or "channels" in grow:
                raise DenoiseError("with --from, only --units/--units2/--proj/--input-skip/--lookahead may be "
                                   "given (to grow the CRNN for a float fine-tune); the encoder channels stay "
                                   "the run's")
            merged = {**CRNN_DEFAULTS, **size, **grow}
            if any(merged[k] < {**CRNN_DEFAULTS, **size}[k] for k in grow):
                raise DenoiseError("--units/--units2/--proj/--input-skip with --from can only grow the CRNN")
            if grow.get("lookahead") and {**CRNN_DEFAULTS, **size}["lookahead"]:
                raise DenoiseError(f"{args.from_run} already looks ahead; a lookahead is added once")
            if grow.get("lookahead") and merged["input_skip"]:
                raise DenoiseError(f"{args.from_run} has the input skip, which a lookahead can't take")
            size = {**size, **grow}
    else:
        kind = args.model or "cr-ced"
        size = crnn_size(args, kind)
        spec = preset(args.preset or "paper8k", model_kind=kind, context_frames=8 if kind == "cr-ced" else 1,
                      output_kind=args.target)
    if kind == "crnn":  # the runtime reads the lookahead from the spec, the graph from the size
        spec = spec.replace(lookahead_frames=int({**CRNN_DEFAULTS, **size}["lookahead"]))
    losses = args.inherited(base_cfg if args.from_run else None)
    distortion, residual = losses["distortion_weight"], losses["residual_weight"]
    postfilter = losses["postfilter_loss"]
    postfilter = postfilter == "wiener"
    sisdr = losses["sisdr_weight"]
    if (distortion or residual or postfilter or sisdr) and spec.output_kind != "mask":
        raise DenoiseError("--distortion-weight/--residual-weight/--postfilter-loss/--sisdr-weight need "
                           "the mask output (--target mask)")
    if sisdr and kind != "crnn":
        raise DenoiseError("--sisdr-weight needs the CRNN: it scores whole sequences, and a CR-CED "
                           "trains on single frames")
    if (out / "spec.json").exists():
        spec = FeatureSpec.from_json((out / "spec.json").read_text())
    cache = pipeline.SpectraCache(spec, args.cache or out.parent / "spectra_cache")
    print(f"reading {len(train_rows)} train / {len(dev_rows)} dev pairs into the spectra cache ...")
    if not spec.feature_mean:
        spec = pipeline.measure_normalisation(train_rows, spec, cache)
    (out / "spec.json").write_text(spec.to_json())

    per_example = 1 if kind == "cr-ced" else args.seq_frames
    steps = max(1, pipeline.count_frames(train_rows, cache) // per_example // args.batch_size)
    val_steps = max(1, pipeline.count_frames(dev_rows, cache) // per_example // args.batch_size)
    if args.steps_per_epoch:
        steps = min(steps, args.steps_per_epoch)
    if args.validation_steps:
        val_steps = min(val_steps, args.validation_steps)

    strategy = strategy_for(args.distribute)
    global_batch = args.batch_size * strategy.num_replicas_in_sync
    train_ds = pipeline.make_dataset(train_rows, spec, cache, kind=kind, batch_size=global_batch,
                                     shuffle=True, seed=args.seed, seq_frames=args.seq_frames,
                                     repeat=True, postfilter=postfilter, phase=bool(sisdr))
    val_ds = pipeline.make_dataset(dev_rows, spec, cache, kind=kind, batch_size=global_batch,
                                   shuffle=False, seq_frames=args.seq_frames, repeat=True,
                                   postfilter=postfilter, phase=bool(sisdr))
    # XLA speeds CR-CED's many small convs up ~1.6x on CPU but slows the LSTM ~80x
    # (measured), and tfmot's fake-quant ops are left to the default runtime.
    use_jit = args.jit == "on" or (args.jit == "auto" and kind == "cr-ced" and not args.qat)
    with strategy.scope():
        if args.qat:
            from .qat import quantize

            model = quantize(base_model, kind)
        else:
            model = build(kind, spec, **size)
            if widen:
                if size.get("pool_above_hz"):
                    raise DenoiseError("a CRNN with pooled input bands can't be band-extended")
                extend_band(base_model, model)
            elif base_model is not None and new_front:
                keep_back_end(base_model, model)
            elif base_model is not None:
                try:  # = set_weights when the size is the same
                    grow_crnn(base_model, model, seed=args.seed)
                except ValueError as err:
                    raise DenoiseError(f"--from {args.from_run}: {err}") from None
        loss = (spectral_loss_weighted(distortion, residual, postfilter, sisdr) if spec.output_kind == "mask"
                else magnitude_loss)
        model.compile(optimizer=keras.optimizers.Adam(args.lr), loss=loss,
                      jit_compile=use_jit)

    preset_name = args.preset or (base_cfg.get("preset") if args.from_run else None) or "paper8k"
    config = {"model": kind, "preset": preset_name, "size": size, "qat": bool(args.qat),
              "from": str(args.from_run) if args.from_run else None, "epochs": args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "lr_decay": args.lr_decay,
              "lr_decay_epochs": args.lr_decay_epochs, "seed": args.seed, "jit": use_jit, "data": str(args.data),
              "distortion_weight": distortion, "residual_weight": residual,
              "postfilter_loss": "wiener" if postfilter else "none", "sisdr_weight": sisdr,
              "monitor": args.monitor,
              "parameters": int(model.count_params()),
              "macs_per_frame": macs_per_frame(build(kind, spec, **size))}
    (out / "config.json").write_text(json.dumps(config, indent=2))

    def schedule(epoch, lr):
        return args.lr * args.lr_decay ** (epoch // args.lr_decay_epochs)

    mode = "max" if args.monitor == "val_pesq" else "min"
    callbacks = [
        QualityCallback(dev_rows[: args.pesq_files], spec, args.pesq_every,
                        postfilter=spec.output_kind == "mask"),
        keras.callbacks.BackupAndRestore(str(backup)),
        keras.callbacks.LearningRateScheduler(schedule),
        keras.callbacks.ModelCheckpoint(str(out / "best.weights.h5"), save_best_only=True,
                                        save_weights_only=True, monitor=args.monitor, mode=mode),
        keras.callbacks.ModelCheckpoint(str(out / "last.weights.h5"), save_weights_only=True),
        *([keras.callbacks.ModelCheckpoint(str(out / "epochs" / "epoch_{epoch:03d}.weights.h5"),
                                           save_weights_only=True)] if args.keep_epochs else []),
        keras.callbacks.EarlyStopping(monitor=args.monitor, mode=mode, patience=args.patience),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "logs"), update_freq="epoch"),
        *extra_callbacks,
    ]
    tracker = None
    if args.wandb:
        from .tracking import Tracker

        tracker = Tracker(args.wandb, {**args.to_dict(), **config}, out)
        callbacks.append(tracker.callback())
    initial_epoch = 0
    backup_files = backup.exists() and any(backup.iterdir())
    if args.resume and not backup_files and (out / "last.weights.h5").exists():
        # the previous run finished (no backup): continue from its last epoch's weights
        model.load_weights(str(out / "last.weights.h5"))
        initial_epoch = epochs_logged(out / "history.csv")
        print(f"continuing a finished run from epoch {initial_epoch}")
    start = time.time()
    history = model.fit(train_ds, epochs=args.epochs, steps_per_epoch=steps,
                        initial_epoch=initial_epoch,
                        validation_data=val_ds, validation_steps=val_steps,
                        callbacks=callbacks, verbose=args.verbose)
    shutil.rmtree(backup, ignore_errors=True)
    summary = {"epochs_run": len(history.history.get("loss", [])),
               "seconds": round(time.time() - start, 1),
               "history": {k: [float(v) for v in vals] for k, vals in history.history.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if tracker is not None:
        hist = summary["history"]
        final = {"parameters": config["parameters"], "macs_per_frame": config["macs_per_frame"],
                 "epochs_run": summary["epochs_run"], "seconds": summary["seconds"]}
        for key in ("val_loss", "val_pesq", "val_stoi"):
            if hist.get(key):
                final[f"best_{key}"] = (max if key != "val_loss" else min)(hist[key])
        tracker.finish(final)
        summary["wandb_dir"] = str(tracker.directory)
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train",
                                description="Train a denoiser (or QAT fine-tune one) on a manifest directory.")
    p.add_argument("--model", choices=KINDS, default=None,
                   help="architecture (default cr-ced; with --from, the run's own)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="JSON of training settings (TrainConfig fields, or a training.tune best.json); "
                        "flags given on the command line override it")
    p.add_argument("--data", required=True, help="folder with manifest.csv (training.make_dataset)")
    p.add_argument("-o", "--out", required=True, help="run folder to create (RUN_DIR)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="feature preset (default paper8k; with --from, the run's own; a --from run on "
                        "a narrower grid of the same bin spacing, e.g. paper8k into wide16k, is "
                        "band-extended: the new model starts as the old one below the old Nyquist)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="per replica (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=0.5, help="step-decay factor (default 0.5)")
    p.add_argument("--lr-decay-epochs", type=int, default=10, help="epochs per decay step (default 10)")
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap on batches per epoch")
    p.add_argument("--validation-steps", type=int, default=None, help="cap on validation batches")
    p.add_argument("--seq-frames", type=int, default=250, help="CRNN training sequence length")
    p.add_argument("--target", choices=["mask", "magnitude"], default="mask",
                   help="model output: a bounded mask on the noisy magnitude (default) or the clean "
                        "magnitude itself (float export only)")
    p.add_argument("--distortion-weight", type=float, default=None, metavar="W",
                   help="mask models: add W x the error of the mask applied to clean speech, "
                        "which trades residual noise for less speech distortion (default 0, "
                        "or the --from run's)")
    p.add_argument("--residual-weight", type=float, default=None, metavar="W",
                   help="mask models: add W x the squared excess of the output over clean speech "
                        "(residual noise), the opposite trade (default 0, or the --from run's)")
    p.add_argument("--postfilter-loss", choices=["none", "wiener"], default=None,
                   help="wiener: score the mask times the runtime post-filter's factor, the gain "
                        "the runtime applies by default, so the model learns what the post-filter "
                        "leaves (default none, or the --from run's)")
    p.add_argument("--sisdr-weight", type=float, default=None, metavar="W",
                   help="CRNN: subtract W x each sequence's SI-SDR in dB (the masked noisy STFT "
                        "against the clean one, phases included), a time-domain-like term beside "
                        "the compressed spectral loss; 0.001 makes 1 dB weigh about as much as a "
                        "few percent of that loss (default 0, or the --from run's)")
    p.add_argument("--units", type=int, default=None, help="CRNN LSTM units (default 128)")
    p.add_argument("--units2", type=int, default=None, metavar="N",
                   help="CRNN: stack a second LSTM of N units on the first; the output layer sees "
                        "both (with --from, added with zero output weights: the run's function is "
                        "kept). Default 0: one LSTM")
    p.add_argument("--proj", type=int, default=None, help="CRNN projection width before the LSTM (default 128)")
    p.add_argument("--input-skip", action="store_true",
                   help="CRNN: feed each frame's features to the output layer beside the LSTM "
                        "(with --from, added with zero weights: the run's function is kept)")
    p.add_argument("--lookahead", type=int, default=None, metavar="FRAMES",
                   help="CRNN: let the mask for each frame hear FRAMES frames after it (each adds "
                        "one hop of latency: 8 ms for the bundled grids); with --from, added with "
                        "zero weights, so the run's function is kept one hop later. Default 0")
    p.add_argument("--pool-above", type=float, default=None, metavar="HZ",
                   help="CRNN: average the input features above HZ into bands that widen with "
                        "frequency (2 bins in the first octave, 4 in the next, ...) before the "
                        "encoder: a cheaper front end, the mask keeps every bin (default: none)")
    p.add_argument("--new-front-end", action="store_true",
                   help="with --from: keep the run's LSTM and output layer and re-learn the encoder "
                        "and projection from scratch (implied by --pool-above with --from), to "
                        "compare front ends without training whole runs")
    p.add_argument("--channels", default=None,
                   help="CRNN encoder conv channels, comma-separated, one per stride-2 conv (default 16,16)")
    p.add_argument("--cache", default=None, help="spectra cache folder (default RUN_DIR/../spectra_cache)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--distribute", choices=["none", "mirrored", "multiworker"], default="none",
                   help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    p.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning of --from")
    p.add_argument("--from", dest="from_run", default=None,
                   help="finished float RUN_DIR to start from: QAT with --qat, else float fine-tuning")
    p.add_argument("--pesq-every", type=int, default=1, help="PESQ/STOI on dev pairs every N epochs (0: off)")
    p.add_argument("--monitor", choices=["val_loss", "val_pesq"], default="val_loss",
                   help="what picks best.weights.h5 and stops early: the validation loss, or the "
                        "PESQ on --pesq-files dev pairs (needs --pesq-every 1; steadier for CR-CED, "
                        "whose loss tracks PESQ loosely)")
    p.add_argument("--pesq-files", type=int, default=4, help="dev pairs scored by PESQ/STOI")
    p.add_argument("--jit", choices=["auto", "on", "off"], default="auto",
                   help="XLA-compile the training step; auto = CR-CED float training only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=1, help="Keras verbosity (1: progress bar)")
    p.add_argument("--keep-epochs", action="store_true",
                   help="also keep every epoch's weights as RUN_DIR/epochs/epoch_NNN.weights.h5, "
                        "for averaging the last few with python -m training.average_weights")
    p.add_argument("--wandb", default=None, metavar="PROJECT",
                   help="log the config, per-epoch metrics and the dev PESQ/STOI to Weights & Biases "
                        "(offline unless WANDB_MODE says otherwise; sync later with wandb sync)")
    return p


def parse_config(argv=None) -> TrainConfig:
    """TrainConfig from the command line; with --config FILE its settings are the defaults
    and the flags given override them."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    parser = build_parser()
    parser.set_defaults(**{k: v for k, v in TrainConfig("", "").to_dict().items()
                           if k not in ("data", "out")})
    if known.config:
        parser.set_defaults(**TrainConfig.settings_file(known.config))
    args = parser.parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k != "config"}
    return TrainConfig.from_dict(values)


def main(argv=None) -> int:
    try:
        config = parse_config(argv)
        config.validate()
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = train(config)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    hist = summary["history"]
    print(f"done: {summary['epochs_run']} epochs in {summary['seconds']} s, "
          f"best val_loss {min(hist['val_loss']):.5f} -> {config.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
