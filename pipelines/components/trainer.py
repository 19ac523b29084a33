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

Phases (`plan_phases`): one, or with --fine_tune_epochs two, as Keras' transfer-learning guide
does it: phase 1 trains the head on a frozen backbone (--epochs at --lr), phase 2 also the
backbone's last --trainable_layers weighted layers (--fine_tune_epochs at --lr x
--fine_tune_lr_factor), the backbone in inference mode throughout (kcv.models.finetune). Phase 2
is a model built with those layers trainable, starting from phase 1's weights, compiled afresh;
each phase has its own backup (a kill in phase 2 resumes phase 2). The summary and the record list
per phase the epochs, learning rate, trainable parameters and whether anything outside the
trainable set (BatchNorm statistics included) moved. Logs of a two-phase run go to phase_1/ and
phase_2/ under model_run/<run_id>/.

Final fit (`final_fit`, the runner's FinalFit step after the Evaluator, with --final_fit): the
recipe the Evaluator blessed is trained again, by the same code with the same settings and seed,
on every labelled example (Split-train + Split-eval), without validation, and exported as
Trainer/final_model/<run_id>/ (logs in Trainer/final_model_run/<run_id>/). Its training summary
names the validated model (`refit_of`), and its SavedModel carries
assets.extra/kcv_lineage.json (the examples it was refit on, the validated score) so a later
Evaluator does not score it on examples it trained on. A recipe not blessed is not refit
(NotBlessedError: kcv-train exits 3).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from typing import Any

import keras
import numpy as np
from absl import logging

from pipelines import artifacts, loop
from pipelines.components import Result
from pipelines.distribute import make_strategy, precision_and_seed, resolve_jit, resolve_policy, worker_info
from pipelines.run_record import blessing_verdict

INPUTS = ("examples", "transform")
OUTPUTS = ("model", "model_run")
# The final fit (the runner's FinalFit step): the blessed recipe retrained on train + eval.
FINAL_FIT_INPUTS = ("examples", "transform", "model", "evaluation", "blessing")
FINAL_FIT_OUTPUTS = ("final_model", "final_model_run")
FINAL_MODEL = ("Trainer", "final_model")
FINAL_MODEL_RUN = ("Trainer", "final_model_run")
LINEAGE = os.path.join("assets.extra", "kcv_lineage.json")  # inside a final model's SavedModel


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

    identity = {"config": cfg.fingerprinted(), "stats": stats, "vocab": vocabulary, "steps_per_epoch": steps}
    if cfg.runtime.mixed_precision == "auto":  # the policy it resolved to here (fingerprints of others unchanged)
        identity["policy"] = resolve_policy("auto")
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
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


def _summary(cfg, history: dict, *, jit: bool, replicas: int, workers: int, steps: int, start: int, digest: str,
             inputs: dict[str, str], phases: list[dict]) -> dict:
    rt = cfg.runtime
    return {"history": history,
            "jit_compile": jit, "jit_compile_flag": rt.jit_compile, "mixed_precision": rt.mixed_precision,
            "policy": resolve_policy(rt.mixed_precision), "deterministic": rt.deterministic, "seed": rt.seed,
            "strategy": rt.strategy, "replicas": replicas, "workers": workers,
            "global_batch": cfg.training.batch_size, "per_replica_batch": cfg.training.batch_size // replicas,
            "steps_per_epoch": steps, "resumed_from_step": start, "weights_sha256": digest,
            "phases": phases, "driver": "pipelines.loop", **inputs}


def _export(task, model, cfg, stats: dict, vocabulary: list[str], out: str, summary: dict,
            lineage: dict | None = None) -> None:
    serving = os.path.join(out, "Format-Serving")
    task.export(model, cfg, stats, vocabulary, serving)
    if lineage is not None:  # beside the SavedModel (not in its fingerprint); the Pusher copies it along
        os.makedirs(os.path.dirname(os.path.join(serving, LINEAGE)), exist_ok=True)
        with open(os.path.join(serving, LINEAGE), "w") as f:
            json.dump(lineage, f, indent=2)
    model.save(os.path.join(out, "model.keras"))
    with open(os.path.join(out, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One training phase: its number, the settings it trains with, and what it trains."""

    index: int
    cfg: Any
    trains: str


def plan_phases(cfg) -> list[Phase]:
    """[the one phase], or with --fine_tune_epochs: [head on a frozen backbone, + the backbone's top]."""
    t = cfg.training
    if not t.fine_tune_epochs:
        return [Phase(1, cfg, "the model's trainable weights")]
    layers = cfg.model.trainable_layers
    head = cfg.replace(**{"model.trainable_layers": 0})
    top = cfg.replace(**{"training.epochs": t.fine_tune_epochs, "training.lr": t.lr * t.fine_tune_lr_factor})
    return [Phase(1, head, "the head (backbone frozen)"),
            Phase(2, top, f"the head and the backbone's last {layers} weighted layers")]


def _parameters(weights) -> int:
    return int(sum(int(np.prod(w.shape)) for w in weights))


def _values_digest(variables) -> str:
    digest = hashlib.sha256()
    for v in variables:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(v)).tobytes())
    return digest.hexdigest()


def _concat(histories: list[dict]) -> dict:
    out: dict[str, list[float]] = {}
    for history in histories:
        for key, values in history.items():
            out.setdefault(key, []).extend(float(v) for v in values)
    return out


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


def _train(task, cfg, inputs, run_id: str, worker, slots: list, run_dir: str | None = None,
           validate: bool = True) -> tuple:
    """Train every phase (each resuming from its backup if it is this run's); returns what the export needs.

    run_dir: the folder for the logs (default Trainer/model_run/<run_id>); validate: False trains
    without the eval split's val_* logs (the final fit, which trains on it).
    """
    strategy = make_strategy(cfg.runtime.strategy)
    examples = inputs["examples"]
    stats = _read_json(os.path.join(inputs["transform"], "stats.json"))
    vocabulary = artifacts.read_vocabulary(examples)
    counts = _read_json(os.path.join(examples, "counts.json"))
    replicas = strategy.num_replicas_in_sync
    steps = steps_per_epoch(cfg, counts["train"], replicas)
    jit = resolve_jit(cfg.runtime.jit_compile, cfg.runtime.strategy)
    logging.info("strategy %s with %d replica(s): global batch %d, %d per replica; %d steps/epoch; "
                 "jit_compile=%s (--jit_compile=%s); policy %s", cfg.runtime.strategy, replicas,
                 cfg.training.batch_size, cfg.training.batch_size // replicas, steps, jit, cfg.runtime.jit_compile,
                 resolve_policy(cfg.runtime.mixed_precision))
    fingerprint = data_fingerprint(cfg, examples, stats, vocabulary, steps)
    model_run = artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.MODEL_RUN)
    if not worker.is_chief:
        run_dir = tempfile.mkdtemp(prefix=f"kcv-worker{worker.task_index}-")
    run_dir = run_dir or os.path.join(model_run, run_id)
    os.makedirs(run_dir, exist_ok=True)
    phases = plan_phases(cfg)
    verbose = 0 if not worker.is_chief else (1 if sys.stdout.isatty() else 2)
    model, backups, histories, reports, restored, trained = None, [], [], [], 0, 0
    for phase in phases:
        pcfg, previous = phase.cfg, model
        with strategy.scope():
            model = task.build_model(pcfg, stats, vocabulary)
            task.compile_model(model, pcfg, steps, jit)
        train = task.train_dataset(pcfg, examples, model)
        validation = task.validation_dataset(pcfg, examples, model) if validate else None
        loop.build_state(model, train.element_spec)  # optimizer slots exist before restoring
        phase_fp = fingerprint if len(phases) == 1 else hashlib.sha256(
            f"{fingerprint}:phase{phase.index}".encode()).hexdigest()
        slots.append(BackupSlot(model_run, phase_fp, run_id))
        backup = loop.Backup(slots[-1].directory, phase_fp, every_steps=cfg.training.backup_steps,
                             chief=worker.is_chief)
        backups.append(backup)
        start, total = backup.restore(model), pcfg.training.epochs * steps
        if start > total:
            raise artifacts.PipelineError(f"backup {backup.directory} is at step {start}, past this run's {total}")
        if start:
            logging.info("phase %d: resuming at global step %d of %d (epoch %d, batch %d): the seeded data "
                         "stream skips %d batches", phase.index, start, total, start // steps + 1, start % steps,
                         start)
        elif previous is not None:
            model.set_weights(previous.get_weights())  # phase 2 continues from phase 1's weights
        # The stream of global batches is a function of the seed alone (seeded shuffles, stateless
        # augmentation seeds, reshuffled per pass), so skipping `start` batches resumes the data
        # order of the uninterrupted run.
        logs = run_dir if len(phases) == 1 else os.path.join(run_dir, f"phase_{phase.index}")
        os.makedirs(logs, exist_ok=True)
        frozen_before = _values_digest(model.non_trainable_weights)
        guard, times = NaNGuard(), loop.LoopTimes()
        history = loop.train(model, train.repeat().skip(start), epochs=pcfg.training.epochs, steps_per_epoch=steps,
                             initial_step=start, validation_data=validation,
                             callbacks=_callbacks(task, pcfg, logs, examples, guard, backup), verbose=verbose,
                             times=times)
        if guard.bad_at:
            where = f"phase {phase.index}, " if len(phases) > 1 else ""
            raise artifacts.PipelineError(
                f"training loss became NaN/inf at {where}{guard.bad_at}; nothing exported (try a smaller --lr)")
        histories.append({k: [float(v) for v in vals] for k, vals in history.history.items()})
        logging.info("Trainer: phase %d, %d steps in %.1f s: waiting for input %.1f s, train steps %.1f s (the "
                     "first, with tracing, %.1f s), validation %.1f s, callbacks and the rest %.1f s", phase.index,
                     times.steps, sum(times.epochs), times.input, times.step, times.first_step, times.validation,
                     times.other)
        restored, trained = restored + start, trained + total - start
        reports.append({
            "phase": phase.index, "trains": phase.trains, "epochs": pcfg.training.epochs, "lr": pcfg.training.lr,
            "lr_schedule": pcfg.training.lr_schedule, "trainable_layers": pcfg.model.trainable_layers,
            "trainable_params": _parameters(model.trainable_weights),
            "non_trainable_params": _parameters(model.non_trainable_weights),
            "steps": total, "resumed_from_step": start,
            # False for a frozen backbone in inference mode: its weights and BatchNorm statistics stay
            "non_trainable_changed": _values_digest(model.non_trainable_weights) != frozen_before,
            "weights_sha256": loop.weights_digest(model),
            "seconds": times.as_dict(),  # input wait / steps / validation / callbacks, per epoch
            **({"logs": logs} if len(phases) > 1 else {})})
    history = _concat(histories)
    if worker.is_chief:
        write_training_curves(history, run_dir)
    summary = _summary(cfg, history, jit=jit, replicas=replicas, workers=worker.num_workers, steps=steps,
                       start=restored, digest=loop.weights_digest(model), inputs=inputs, phases=reports)
    summary["train_examples"] = counts["train"]
    return model, stats, vocabulary, summary, backups, run_dir, trained


def _describe(phases: list[dict]) -> str:
    if len(phases) == 1:
        return ""
    return "; ".join(f"phase {p['phase']}: {p['trains']}, {p['epochs']} epoch{'s' * (p['epochs'] != 1)} at "
                     f"lr {p['lr']:.3g}, "
                     f"{p['trainable_params']:,} trainable parameters" for p in phases) + " -- "


def _fit(cfg, task, inputs: dict[str, str], run_id: str, *, model_kind=artifacts.MODEL, run_dir: str | None = None,
         validate: bool = True, extra: dict | None = None, lineage: dict | None = None):
    """Train and export (the one driver of both the Trainer and the final fit); returns
    (model folder, log folder, summary, trained steps), or (None, ...) on a non-chief worker."""
    worker = worker_info() if cfg.runtime.strategy == "multi_worker" else worker_info("")
    slots: list[BackupSlot] = []
    try:
        with precision_and_seed(cfg.runtime.mixed_precision, cfg.runtime.seed, cfg.runtime.deterministic):
            model, stats, vocabulary, summary, backups, run_dir, trained = _train(
                task, cfg, inputs, run_id, worker, slots, run_dir=run_dir, validate=validate)
            summary.update(extra or {})
            if not worker.is_chief:
                try:
                    _export(task, model, cfg, stats, vocabulary, run_dir, summary)  # collective saving; then deleted
                finally:
                    shutil.rmtree(run_dir, ignore_errors=True)
                return None, run_dir, summary, trained
            with artifacts.Publish(cfg.paths.pipeline_root, model_kind, run_id) as out:
                _export(task, model, cfg, stats, vocabulary, out, summary, lineage)
        logging.info("Trainer: weights sha256 %s", summary["weights_sha256"])
        for backup in backups:
            backup.discard()  # the model is published: a rerun trains afresh
    finally:
        for slot in slots:
            slot.release()
    return os.path.join(artifacts.artifact_dir(cfg.paths.pipeline_root, model_kind), run_id), run_dir, summary, trained


def _record_phases(summary: dict) -> list[dict]:
    """The per-phase facts for the run record (the summary file also keeps the histories)."""
    return [{k: v for k, v in p.items() if k != "logs"} for p in summary["phases"]]


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    model_dir, run_dir, summary, trained = _fit(cfg, task, inputs, run_id)
    digest = summary["weights_sha256"]
    if model_dir is None:
        worker = worker_info()
        return Result({}, f"worker {worker.task_index} of {worker.num_workers} trained {trained} steps; "
                      f"only the chief exports; weights sha256 {digest}")
    return Result({"model": model_dir, "model_run": run_dir},
                  f"{_describe(summary['phases'])}trained {trained} steps; weights sha256 {digest}",
                  info={"weights_sha256": digest, "phases": _record_phases(summary)})


# ---- the final fit ---------------------------------------------------------------------------------
def all_labelled_examples(examples: str, folder: str) -> dict:
    """An examples folder in `folder` whose Split-train is every labelled example of `examples`
    (links to its Split-train and Split-eval shards) and whose Split-eval is the eval split;
    returns its counts.json (train = train + eval)."""
    counts = _read_json(os.path.join(examples, "counts.json"))
    train = os.path.join(folder, "Split-train")
    os.makedirs(train)
    for split in ("train", "eval"):
        source = os.path.join(examples, f"Split-{split}")
        for name in sorted(os.listdir(source)):
            os.symlink(os.path.abspath(os.path.join(source, name)), os.path.join(train, f"{split}-{name}"))
    os.symlink(os.path.abspath(os.path.join(examples, "Split-eval")), os.path.join(folder, "Split-eval"))
    shutil.copyfile(os.path.join(examples, artifacts.VOCABULARY), os.path.join(folder, artifacts.VOCABULARY))
    merged = dict(counts, train=counts["train"] + counts["eval"], refit_of_examples=os.path.abspath(examples),
                  splits={"train": counts["train"], "eval": counts["eval"]})
    for key in ("train_per_class", "eval_per_class"):
        merged.pop(key, None)
    per_class: dict[str, int] = {}
    for key in ("train_per_class", "eval_per_class"):
        for label, n in counts.get(key, {}).items():
            per_class[label] = per_class.get(label, 0) + n
    if per_class:
        merged["train_per_class"] = dict(sorted(per_class.items()))
    with open(os.path.join(folder, "counts.json"), "w") as f:
        json.dump(merged, f, indent=2)
    return merged


def final_fit(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    """The FinalFit step: retrain the recipe the Evaluator blessed on train + eval; NotBlessedError otherwise."""
    model_dir = inputs["model"]
    verdict = blessing_verdict(inputs["blessing"])
    if not verdict["blessed"]:
        raise artifacts.NotBlessedError(f"recipe not blessed, so not refit and nothing pushed: {verdict['reason']}")
    if os.path.abspath(verdict["model"] or "") != os.path.abspath(model_dir):
        raise artifacts.PipelineError(f"the blessing {inputs['blessing']} is for {verdict['model']}, not {model_dir}: "
                                      "run the Evaluator on this model first")
    metrics = _read_json(os.path.join(inputs["evaluation"], "metrics.json"))
    validated = _read_json(os.path.join(model_dir, "training_summary.json"))
    key = metrics["primary_metric"]
    root = cfg.paths.pipeline_root
    base = artifacts.artifact_dir(root, FINAL_MODEL)
    os.makedirs(base, exist_ok=True)
    view = tempfile.mkdtemp(dir=base, prefix=f".examples-{run_id}-")  # links only; removed after training
    try:
        counts = all_labelled_examples(inputs["examples"], view)
        refit_inputs = {"examples": view, "transform": inputs["transform"]}
        lineage = {"final_fit": True, "refit_of": model_dir, "examples": inputs["examples"],
                   "examples_fingerprint": counts.get("fingerprint"), "train_examples": counts["train"],
                   "validated": {"primary_metric": key, key: metrics[key], "examples": metrics.get("examples")}}
        extra = {"final_fit": True, "refit_of": model_dir, "examples": inputs["examples"],
                 "splits": counts["splits"], "validated_weights_sha256": validated.get("weights_sha256")}
        final_dir, run_dir, summary, trained = _fit(
            cfg, task, refit_inputs, run_id, model_kind=FINAL_MODEL,
            run_dir=os.path.join(artifacts.artifact_dir(root, FINAL_MODEL_RUN), run_id), validate=False,
            extra=extra, lineage=lineage)
    finally:
        shutil.rmtree(view, ignore_errors=True)
    digest = summary["weights_sha256"]
    n = counts["splits"]
    return Result({"final_model": final_dir, "final_model_run": run_dir},
                  f"refit the blessed recipe on all {counts['train']} labelled examples ({n['train']} train + "
                  f"{n['eval']} eval): {_describe(summary['phases'])}trained {trained} steps; weights sha256 {digest}",
                  info={"weights_sha256": digest, "refit_of": model_dir, "train_examples": counts["train"],
                        "validated_weights_sha256": validated.get("weights_sha256"),
                        "phases": _record_phases(summary)})
