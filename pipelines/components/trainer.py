"""Trainer: the one training driver for every model (the task's model and data, pipelines.loop).

Consumes the run's `examples` and `transform` artifacts, builds the model inside the strategy
scope, resumes from the training backup when a killed run of the same configuration and data
left one (Trainer/model_run/backup-<fingerprint>/), trains with pipelines.loop (a progress bar,
plain lines when stdout is not a terminal; TensorBoard events and a CSV log under
Trainer/model_run/<run_id>/), then exports Trainer/model/<run_id>/Format-Serving (SavedModel),
model.keras and training_summary.json beside it, and deletes the backup.

Under --strategy=multi_worker every worker trains; only the chief writes the model artifact and
the backup. The other workers export into a temporary folder that is deleted (every worker must
take part in saving under MultiWorkerMirroredStrategy) and report their weights' sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile

import keras
from absl import logging

from pipelines import artifacts, loop
from pipelines.components import Result
from pipelines.distribute import POLICIES, make_strategy, precision_and_seed, resolve_jit, worker_info

INPUTS = ("examples", "transform")
OUTPUTS = ("model", "model_run")


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


def data_fingerprint(cfg, examples: str, stats: dict, vocabulary: list[str], steps: int) -> str:
    """sha256 of what determines the training: the fingerprinted settings of the config, the
    Transform statistics, vocabulary, steps per epoch and the train split's records.

    ExampleGen rerun with the same flags writes the same Examples in the same order, so a rerun
    of a killed command matches its backup; different data or settings do not. The records are
    hashed in a canonical serialization: a tf.train.Example's feature map is serialized in an
    order that changes from process to process, so the shards' bytes differ between runs.
    """
    import tensorflow as tf

    from kcv.data.tfrecords import read_records

    digest = hashlib.sha256(json.dumps(
        {"config": cfg.fingerprinted(), "stats": stats, "vocab": vocabulary, "steps_per_epoch": steps},
        sort_keys=True, default=str).encode())
    for record in read_records(os.path.join(examples, "Split-train")).as_numpy_iterator():
        digest.update(tf.train.Example.FromString(record).SerializeToString(deterministic=True))
    return digest.hexdigest()


def steps_per_epoch(cfg, train_examples: int, replicas: int) -> int:
    """Full global batches per epoch (capped by --steps_per_epoch); PipelineError when there are none."""
    batch = cfg.training.batch_size
    if batch % replicas:
        raise artifacts.PipelineError(f"--batch_size={batch} is not divisible by {replicas} replicas")
    steps = train_examples // batch
    if steps == 0:
        raise artifacts.PipelineError(f"--batch_size={batch} is larger than the {train_examples} training examples")
    return min(steps, cfg.training.steps_per_epoch) if cfg.training.steps_per_epoch else steps


def _callbacks(task, cfg, run_dir: str, examples: str, guard: NaNGuard, backup: loop.Backup) -> list:
    from kcv.callbacks.tensorboard import TrainingScalars

    return [guard,
            keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
            TrainingScalars(os.path.join(run_dir, "tensorboard"), cfg.training.batch_size),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "training_log.csv")),
            backup,
            *task.callbacks(cfg, run_dir, examples)]


def write_training_curves(history: dict, run_dir: str) -> str | None:
    """The book's per-epoch plot of the History into run_dir/training_curves.png (None: no epochs)."""
    from kcv.viz.boxes import save_figure
    from kcv.viz.figures import training_curves

    if not any(len(v) for v in history.values()):
        return None
    path = os.path.join(run_dir, "training_curves.png")
    save_figure(training_curves(history), path)
    return path


def _summary(cfg, history, *, jit: bool, replicas: int, workers: int, steps: int, start: int, digest: str,
             inputs: dict[str, str]) -> dict:
    rt = cfg.runtime
    return {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
            "jit_compile": jit, "jit_compile_flag": rt.jit_compile, "mixed_precision": rt.mixed_precision,
            "policy": POLICIES[rt.mixed_precision], "deterministic": rt.deterministic, "seed": rt.seed,
            "strategy": rt.strategy, "replicas": replicas, "workers": workers,
            "global_batch": cfg.training.batch_size, "per_replica_batch": cfg.training.batch_size // replicas,
            "steps_per_epoch": steps, "resumed_from_step": start, "weights_sha256": digest,
            "driver": "pipelines.loop", **inputs}


def _export(task, model, cfg, stats: dict, vocabulary: list[str], out: str, summary: dict) -> None:
    task.export(model, cfg, stats, vocabulary, os.path.join(out, "Format-Serving"))
    model.save(os.path.join(out, "model.keras"))
    with open(os.path.join(out, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


def _prepare(task, cfg, inputs: dict[str, str], strategy):
    """(model, train dataset, validation dataset or None, steps per epoch, jit) inside the strategy."""
    examples = inputs["examples"]
    stats = _read_json(os.path.join(inputs["transform"], "stats.json"))
    vocabulary = artifacts.read_vocabulary(examples)
    counts = _read_json(os.path.join(examples, "counts.json"))
    replicas = strategy.num_replicas_in_sync
    steps = steps_per_epoch(cfg, counts["train"], replicas)
    jit = resolve_jit(cfg.runtime.jit_compile, cfg.runtime.strategy)
    with strategy.scope():
        model = task.build_model(cfg, stats, vocabulary)
        task.compile_model(model, cfg, steps, jit)
    logging.info("strategy %s with %d replica(s): global batch %d, %d per replica; %d steps/epoch; "
                 "jit_compile=%s (--jit_compile=%s); policy %s", cfg.runtime.strategy, replicas,
                 cfg.training.batch_size, cfg.training.batch_size // replicas, steps, jit, cfg.runtime.jit_compile,
                 POLICIES[cfg.runtime.mixed_precision])
    train = task.train_dataset(cfg, examples, model)
    return model, train, task.validation_dataset(cfg, examples, model), (stats, vocabulary), steps, jit


class BackupSlot:
    """The backup folder of one fingerprint, held by one Trainer at a time.

    The rerun of a killed command finds `backup-<fingerprint>` (same settings, same data). A run
    of the same settings that starts while another is training backs up to its own
    `backup-<fingerprint>-<run_id>` instead of writing into, resuming from or deleting the other's.
    """

    def __init__(self, model_run: str, fingerprint: str, run_id: str):
        base = os.path.join(model_run, f"backup-{fingerprint[:16]}")
        self._lock = artifacts.try_lock(os.path.join(model_run, f".backup-{fingerprint[:16]}.lock"))
        self.directory = base if self._lock else f"{base}-{run_id}"
        if not self._lock:
            logging.warning("another run of this configuration is training: backing up to %s", self.directory)

    def release(self) -> None:
        if self._lock:
            self._lock.close()
            self._lock = None


def _train(task, cfg, inputs, run_id: str, worker, slots: list) -> tuple:
    """Train (resuming from the backup if it is this run's); returns what the export needs."""
    strategy = make_strategy(cfg.runtime.strategy)
    model, train, validation, (stats, vocabulary), steps, jit = _prepare(task, cfg, inputs, strategy)
    loop.build_state(model, train.element_spec)  # optimizer slots exist before restoring
    fingerprint = data_fingerprint(cfg, inputs["examples"], stats, vocabulary, steps)
    model_run = artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.MODEL_RUN)
    slots.append(BackupSlot(model_run, fingerprint, run_id))
    backup = loop.Backup(slots[-1].directory, fingerprint, every_steps=cfg.training.backup_steps,
                         chief=worker.is_chief)
    start, total = backup.restore(model), cfg.training.epochs * steps
    if start > total:
        raise artifacts.PipelineError(f"backup {backup.directory} is at step {start}, past this run's {total}")
    if start:
        logging.info("resuming at global step %d of %d (epoch %d, batch %d): the seeded data stream "
                     "skips %d batches", start, total, start // steps + 1, start % steps, start)
    # The stream of global batches is a function of the seed alone (seeded shuffles, stateless
    # augmentation seeds, reshuffled per pass), so skipping `start` batches resumes the data
    # order of the uninterrupted run.
    run_dir = (tempfile.mkdtemp(prefix=f"kcv-worker{worker.task_index}-") if not worker.is_chief else
               os.path.join(model_run, run_id))
    os.makedirs(run_dir, exist_ok=True)
    guard = NaNGuard()
    verbose = 0 if not worker.is_chief else (1 if sys.stdout.isatty() else 2)
    history = loop.train(model, train.repeat().skip(start), epochs=cfg.training.epochs, steps_per_epoch=steps,
                         initial_step=start, validation_data=validation,
                         callbacks=_callbacks(task, cfg, run_dir, inputs["examples"], guard, backup), verbose=verbose)
    if guard.bad_at:
        raise artifacts.PipelineError(
            f"training loss became NaN/inf at {guard.bad_at}; nothing exported (try a smaller --lr)")
    if worker.is_chief:
        write_training_curves(history.history, run_dir)
    summary = _summary(cfg, history, jit=jit, replicas=strategy.num_replicas_in_sync, workers=worker.num_workers,
                       steps=steps, start=start, digest=loop.weights_digest(model), inputs=inputs)
    return model, stats, vocabulary, summary, backup, run_dir, total - start


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    worker = worker_info() if cfg.runtime.strategy == "multi_worker" else worker_info("")
    slots: list[BackupSlot] = []
    try:
        with precision_and_seed(cfg.runtime.mixed_precision, cfg.runtime.seed, cfg.runtime.deterministic):
            model, stats, vocabulary, summary, backup, run_dir, trained = _train(task, cfg, inputs, run_id, worker,
                                                                                 slots)
            digest = summary["weights_sha256"]
            if not worker.is_chief:
                try:
                    _export(task, model, cfg, stats, vocabulary, run_dir, summary)  # collective saving; then deleted
                finally:
                    shutil.rmtree(run_dir, ignore_errors=True)
                return Result({}, f"worker {worker.task_index} of {worker.num_workers} trained {trained} steps; "
                              f"only the chief exports; weights sha256 {digest}")
            with artifacts.Publish(cfg.paths.pipeline_root, artifacts.MODEL, run_id) as out:
                _export(task, model, cfg, stats, vocabulary, out, summary)
        logging.info("Trainer: weights sha256 %s", digest)
        backup.discard()  # the model is published: a rerun trains afresh
    finally:
        for slot in slots:
            slot.release()
    model_dir = os.path.join(artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.MODEL), run_id)
    return Result({"model": model_dir, "model_run": run_dir}, f"trained {trained} steps; weights sha256 {digest}",
                  info={"weights_sha256": digest})
