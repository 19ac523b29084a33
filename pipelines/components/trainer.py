"""Trainer: the one training driver for every model (the task's model and data, pipelines.loop).

Reads the latest examples and transform artifacts, builds the model inside the strategy scope,
resumes from <pipeline_root>/Trainer/model_run/backup/ when a killed run of the same
configuration and data left one, trains with pipelines.loop (a progress bar, plain lines when
stdout is not a terminal; TensorBoard events, a CSV log and per-epoch weights under
Trainer/model_run/<run_id>/), then exports Trainer/model/<run_id>/Format-Serving (SavedModel),
model.keras and training_summary.json beside it, and deletes the backup.

Under --strategy=multi_worker every worker trains; only the chief writes the model artifact and
the backup. The other workers export into a temporary folder that is deleted (every worker must
take part in saving under MultiWorkerMirroredStrategy) and report their weights' sha256.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile

import keras
from absl import logging

from pipelines import artifacts, loop
from pipelines.distribute import POLICIES, make_strategy, precision_and_seed, resolve_jit, worker_info
from pipelines.tasks import get_task

BACKUP = "backup"  # Trainer/model_run/backup/: stable across run ids, so the rerun finds it

# Settings that do not change what is trained; everything else in the config must match for a
# backup to be resumed (a changed --lr or --data_dir starts afresh).
_NOT_FINGERPRINTED = ("pipeline_root", "serving_model_dir", "components", "strategy", "jit_compile",
                      "min_accuracy", "max_regression", "backup_steps", "book")


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
        if self.bad_at is None and not loop.finite_losses(logs):
            bad = sorted(k for k, v in logs.items() if "loss" in k and not loop.finite_losses({k: v}))
            self.bad_at = f"epoch {self._epoch + 1}, step {batch + 1} ({', '.join(bad)})"
            self.model.stop_training = True


def data_fingerprint(cfg, examples: str, stats: dict, vocab: list[str], steps: int) -> str:
    """sha256 of what determines the training: config (less _NOT_FINGERPRINTED), Transform
    statistics, vocabulary, steps per epoch and the bytes of the train split's TFRecords.

    ExampleGen rerun with the same flags writes the same Examples in the same order, so a rerun
    of a killed command matches its backup; different data or settings do not. The records are
    hashed in a canonical serialization: a tf.train.Example's feature map is serialized in an
    order that changes from process to process, so the shards' bytes differ between runs.
    """
    import tensorflow as tf

    from kcv.data.tfrecords import read_records

    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_FINGERPRINTED}
    digest = hashlib.sha256(json.dumps(
        {"config": settings, "stats": {k: v for k, v in stats.items() if k != "examples"},
         "vocab": vocab, "steps_per_epoch": steps}, sort_keys=True, default=str).encode())
    for record in read_records(os.path.join(examples, "Split-train")).as_numpy_iterator():
        digest.update(tf.train.Example.FromString(record).SerializeToString(deterministic=True))
    return digest.hexdigest()


def _export(task, model, cfg, stats, vocab, out: str, summary: dict) -> None:
    task.export(model, cfg, stats, vocab, os.path.join(out, "Format-Serving"))
    model.save(os.path.join(out, "model.keras"))
    with open(os.path.join(out, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


def run(cfg, run_id: str) -> str:
    examples = artifacts.latest(cfg.pipeline_root, artifacts.EXAMPLES, "Trainer")
    transform = artifacts.latest(cfg.pipeline_root, artifacts.TRANSFORM, "Trainer")
    stats = _read_json(os.path.join(transform, "stats.json"))
    with open(os.path.join(transform, "labels.txt")) as f:
        vocab = [line.rstrip("\n") for line in f if line.strip()]
    counts = _read_json(os.path.join(examples, "counts.json"))
    task = get_task(cfg.task)
    worker = worker_info() if cfg.strategy == "multi_worker" else worker_info("")

    with precision_and_seed(cfg.mixed_precision, cfg.seed, cfg.deterministic):
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
        logging.info("strategy %s with %d replica(s) on %d worker(s): global batch %d, %d per replica; "
                     "%d steps/epoch; jit_compile=%s (--jit_compile=%s); policy %s",
                     cfg.strategy, replicas, worker.num_workers, cfg.batch_size, cfg.batch_size // replicas,
                     steps, jit, cfg.jit_compile, POLICIES[cfg.mixed_precision])

        train_data = task.dataset(cfg, examples, "train", training=True, batch_size=cfg.batch_size)
        eval_ds = task.validation_dataset(cfg, examples, cfg.batch_size)
        with strategy.scope():
            model = task.build_model(cfg, stats, vocab)
            task.compile_model(model, cfg, steps, jit)
        loop.build_state(model, train_data.element_spec)  # optimizer slots exist before restoring

        backup = loop.Backup(os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.MODEL_RUN), BACKUP),
                             data_fingerprint(cfg, examples, stats, vocab, steps),
                             every_steps=cfg.backup_steps, chief=worker.is_chief)
        start = backup.restore(model)
        total = cfg.epochs * steps
        if start > total:
            raise artifacts.PipelineError(f"backup {backup.path} is at step {start}, past this run's {total}")
        if start:
            logging.info("resuming at global step %d of %d (epoch %d, batch %d): the seeded data stream "
                         "skips %d batches", start, total, start // steps + 1, start % steps, start)
        # The stream of global batches is a function of the seed alone (seeded shuffles, stateless
        # augmentation seeds, reshuffled per pass), so skipping `start` batches resumes the data
        # order of the uninterrupted run.
        train_ds = train_data.repeat().skip(start)

        scratch = None if worker.is_chief else tempfile.mkdtemp(prefix=f"kcv-worker{worker.task_index}-")
        try:
            run_dir = scratch or os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.MODEL_RUN), run_id)
            os.makedirs(run_dir, exist_ok=True)
            guard = NaNGuard()
            callbacks = [
                guard,
                keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
                keras.callbacks.CSVLogger(os.path.join(run_dir, "training_log.csv")),
                keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "checkpoints", "last.weights.h5"),
                                                save_weights_only=True),
                backup,
                *task.callbacks(cfg, run_dir, examples),
            ]
            verbose = 0 if not worker.is_chief else (1 if sys.stdout.isatty() else 2)
            history = loop.train(model, train_ds, epochs=cfg.epochs, steps_per_epoch=steps, initial_step=start,
                                 validation_data=eval_ds, callbacks=callbacks, verbose=verbose)
            if guard.bad_at:
                raise artifacts.PipelineError(
                    f"training loss became NaN/inf at {guard.bad_at}; nothing exported (try a smaller --lr)")

            digest = loop.weights_digest(model)
            summary = {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
                       "jit_compile": jit, "jit_compile_flag": cfg.jit_compile,
                       "mixed_precision": cfg.mixed_precision, "policy": POLICIES[cfg.mixed_precision],
                       "deterministic": cfg.deterministic, "seed": cfg.seed, "strategy": cfg.strategy,
                       "replicas": replicas, "workers": worker.num_workers, "global_batch": cfg.batch_size,
                       "per_replica_batch": cfg.batch_size // replicas, "steps_per_epoch": steps,
                       "resumed_from_step": start, "weights_sha256": digest, "driver": "pipelines.loop",
                       "examples": examples, "transform": transform}
            if not worker.is_chief:
                _export(task, model, cfg, stats, vocab, scratch, summary)  # collective saving; then deleted
                return (f"worker {worker.task_index} of {worker.num_workers} trained {total - start} steps; "
                        f"only the chief exports; weights sha256 {digest}")
            with artifacts.Publish(cfg.pipeline_root, artifacts.MODEL, run_id) as out:
                _export(task, model, cfg, stats, vocab, out, summary)
            logging.info("Trainer: weights sha256 %s", digest)
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
    backup.discard()  # the model is published: a rerun trains afresh
    return os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.MODEL), run_id)
