"""Trainer: the one training driver for every model (model.fit on the task's model and data).

Reads the latest examples and transform artifacts, builds the model inside the strategy scope,
trains with a progress bar (plain lines when stdout is not a terminal), TensorBoard events, a CSV
log and per-epoch checkpoints under Trainer/model_run/<run_id>/, then exports
Trainer/model/<run_id>/Format-Serving (SavedModel) and model.keras beside it.
"""
from __future__ import annotations

import json
import math
import os
import sys

import keras
from absl import logging

from pipelines import artifacts
from pipelines.distribute import make_strategy, resolve_jit, set_precision_and_seed
from pipelines.tasks import get_task


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where, for a clear error."""

    def __init__(self):
        super().__init__()
        self.bad_at: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_at = f"epoch {self._epoch + 1}, step {batch + 1}"
            self.model.stop_training = True


def run(cfg, run_id: str) -> str:
    examples = artifacts.latest(cfg.pipeline_root, artifacts.EXAMPLES, "Trainer")
    transform = artifacts.latest(cfg.pipeline_root, artifacts.TRANSFORM, "Trainer")
    stats = _read_json(os.path.join(transform, "stats.json"))
    with open(os.path.join(transform, "labels.txt")) as f:
        vocab = [line.rstrip("\n") for line in f if line.strip()]
    counts = _read_json(os.path.join(examples, "counts.json"))
    task = get_task(cfg.task)

    set_precision_and_seed(cfg.mixed_precision, cfg.seed, cfg.deterministic)
    strategy = make_strategy(cfg.strategy)
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise artifacts.PipelineError(f"--batch_size={cfg.batch_size} is not divisible by {replicas} replicas")
    steps = counts["train"] // cfg.batch_size
    if steps == 0:
        raise artifacts.PipelineError(
            f"--batch_size={cfg.batch_size} is larger than the {counts['train']} training examples")
    if cfg.steps_per_epoch:
        steps = min(steps, cfg.steps_per_epoch)
    jit = resolve_jit(cfg.jit_compile, cfg.strategy)
    logging.info("strategy %s with %d replica(s): global batch %d, %d per replica; %d steps/epoch; jit_compile=%s",
                 cfg.strategy, replicas, cfg.batch_size, cfg.batch_size // replicas, steps, jit)

    train_ds = task.dataset(cfg, examples, "train", training=True, batch_size=cfg.batch_size).repeat()
    eval_ds = task.validation_dataset(cfg, examples, cfg.batch_size)
    with strategy.scope():
        model = task.build_model(cfg, stats, vocab)
        task.compile_model(model, cfg, steps, jit)

    run_dir = os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.MODEL_RUN), run_id)
    os.makedirs(run_dir, exist_ok=True)
    guard = NaNGuard()
    callbacks = [
        guard,
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "training_log.csv")),
        keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "checkpoints", "last.weights.h5"),
                                        save_weights_only=True),
        *task.callbacks(cfg, run_dir, examples),
    ]
    history = model.fit(train_ds, epochs=cfg.epochs, steps_per_epoch=steps, validation_data=eval_ds,
                        callbacks=callbacks, shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
    if guard.bad_at:
        raise artifacts.PipelineError(
            f"training loss became NaN/inf at {guard.bad_at}; nothing exported (try a smaller --lr)")

    with artifacts.Publish(cfg.pipeline_root, artifacts.MODEL, run_id) as out:
        task.export(model, cfg, stats, vocab, os.path.join(out, "Format-Serving"))
        model.save(os.path.join(out, "model.keras"))
        summary = {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
                   "jit_compile": jit, "replicas": replicas, "steps_per_epoch": steps,
                   "examples": examples, "transform": transform}
        with open(os.path.join(out, "training_summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.MODEL), run_id)
