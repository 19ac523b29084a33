"""The one generic training loop: any model's own `train_step` under `strategy.run`.

Why not `model.fit` (DESIGN.md section 7):
- Keras 3.15's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585). Measured
  here: before the first step it reduces a distributed batch eagerly and stops with
  "Attempt to convert a value (PerReplica:{...}) ... to a Tensor".
- fit cannot start in the middle of an epoch, which resuming exactly after a kill needs.
So the Trainer always trains with `train()` below: one code path for every strategy, and a run
resumed after a kill executes the same graph as an uninterrupted one. It calls the model's
`train_step` / `test_step` (compiled classifiers, the GAN's own step, the detector's), so there is
no per-model loop. Callbacks, History and the progress bar behave as under fit.

`Backup` is the loop's resumable state, one `tf.train.Checkpoint` (variables matched by object
path): model variables (weights, BatchNorm statistics, seed generator states), every optimizer's
variables (slots, iteration count, so the learning-rate schedule position) and the global step,
which fixes the position in the seeded data stream.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import weakref
from typing import Any, Iterable

import keras
import numpy as np
from absl import logging

from pipelines.artifacts import PipelineError


# ---- datasets and state ---------------------------------------------------------------------
def build_state(model: keras.Model, element_spec: Any) -> None:
    """Create the compiled loss's, metrics' and optimizer's variables in the model's strategy
    scope from the dataset's element spec, as fit does before distributing: variables created
    inside a replica step would be per-replica or fail."""
    with model.distribute_strategy.scope():
        # keras.Model has no public way to build compiled metrics from a spec; fit calls this.
        model._symbolic_build(data_batch=element_spec)


def distribute_dataset(strategy, dataset):
    """`strategy.experimental_distribute_dataset`; each dataset element is a global batch.

    Multi-worker: every worker reads the same (seeded, identical) records and keeps its share of
    each global batch (AutoShardPolicy.DATA), so the sequence of global batches is the one a
    single device sees, whatever the number of files.
    """
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    return strategy.experimental_distribute_dataset(dataset)


def _static_batch(spec) -> int | None:
    import tensorflow as tf

    leaf = tf.nest.flatten(spec, expand_composites=False)[0]
    specs = getattr(leaf, "_value_specs", None) or (leaf,)  # a PerReplicaSpec holds one spec per replica
    shape = specs[0].shape
    return int(shape[0]) if shape.rank and shape[0] is not None else None


def per_replica_batch(distributed_dataset) -> int | None:
    """The static batch size each replica gets from a distributed dataset (None when unknown)."""
    return _static_batch(distributed_dataset.element_spec)


def finite_losses(logs: dict | None) -> bool:
    """False when any logged loss (loss, d_loss, val_loss, ...) is NaN or infinite."""
    for key, value in (logs or {}).items():
        if "loss" in key and np.ndim(value) == 0 and not math.isfinite(float(value)):
            return False
    return True


def weights_digest(model: keras.Model) -> str:
    """sha256 of the model's variables in order (shapes, dtypes and bytes; not their names, which
    Keras numbers per process), to compare workers and runs."""
    digest = hashlib.sha256()
    for v in model.variables:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(v))
        digest.update(f"{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


# ---- per-replica statistics -------------------------------------------------------------------
def replica_local_variables(model: keras.Model) -> list:
    """Non-trainable float variables that each replica updates on its own (aggregation "none"),
    i.e. BatchNorm moving statistics: Keras gives every replica its own copy, fed by its share
    of the batch, so replicas and workers drift apart and an export would keep replica 0's."""
    return [v for v in model.variables
            if not v.trainable and "float" in str(v.dtype) and v.aggregation == "none"
            and v.synchronization != "on_read"]


_SYNC_FUNCTIONS: "weakref.WeakKeyDictionary[keras.Model, Any]" = weakref.WeakKeyDictionary()


def sync_replica_statistics(model: keras.Model) -> None:
    """Set every replica's copy of `replica_local_variables` to their mean over all replicas.

    A moving average is linear in its inputs, so the mean of the replicas' moving averages is the
    moving average of the global batches' statistics whenever it is taken: syncing at epoch ends
    and before backups leaves the values those of syncing every step, and all workers end with
    identical weights. Called at the same steps on every worker (it is a collective).
    """
    import tensorflow as tf

    strategy = model.distribute_strategy
    variables = replica_local_variables(model)
    if strategy.num_replicas_in_sync == 1 or not variables:
        return
    if model not in _SYNC_FUNCTIONS:
        def replica_fn():
            context = tf.distribute.get_replica_context()
            means = context.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in variables])
            for v, mean in zip(variables, means):
                v.assign(mean)

        _SYNC_FUNCTIONS[model] = tf.function(lambda: strategy.run(replica_fn))
    _SYNC_FUNCTIONS[model]()


# ---- the loop -------------------------------------------------------------------------------
def _step_functions(model: keras.Model, strategy):
    import tensorflow as tf

    def one_step(data):
        outputs = strategy.run(model.train_step, args=(data,))
        # Per-replica results -> one value (mean over replicas, as fit reports them); every
        # worker gets the same numbers, so a stop decision (NaN loss) is taken by all at once.
        return tf.nest.map_structure(lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None),
                                     outputs)

    # The batch is fetched eagerly by the caller (not inside this graph) so that the time spent
    # waiting for the input pipeline can be told apart from the step itself (LoopTimes).
    train_function = tf.function(one_step, jit_compile=bool(model.jit_compile), reduce_retracing=True)

    @tf.function
    def test_function(distributed_dataset):
        for data in distributed_dataset:
            strategy.run(model.test_step, args=(data,))
        # Read in cross-replica context: each metric's totals and counts are summed over
        # replicas (and workers), exact even when the last batch is split unevenly.
        return model.get_metrics_result()

    return train_function, test_function


@dataclasses.dataclass
class LoopTimes:
    """Where `train()`'s wall-clock seconds went, summed over the epochs it ran.

    input: waiting for the next global batch (the tf.data pipeline; near 0 when prefetching keeps
    up); step: the train steps (forward, backward, updates, until their logs are read);
    first_step: the first of them, included in `step` (mostly tracing and compilation);
    validation: the per-epoch test_step passes; other: callbacks (progress, backups, TensorBoard)
    and the loop itself. epochs: each epoch's seconds, in order. A resumed run counts only what
    it ran itself (its first epoch may be partial).
    """
    input: float = 0.0
    step: float = 0.0
    first_step: float = 0.0
    validation: float = 0.0
    other: float = 0.0
    steps: int = 0
    epochs: list = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        out = {k: round(v, 3) for k, v in dataclasses.asdict(self).items() if isinstance(v, float)}
        return {**out, "steps": self.steps, "epochs": [round(e, 3) for e in self.epochs]}


def _numbers(logs: dict) -> dict:
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v)) for k, v in logs.items()}


def train(
    model: keras.Model,
    dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    initial_step: int = 0,
    validation_data=None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int = 2,
    times: LoopTimes | None = None,
) -> keras.callbacks.History:
    """Train `model` (compiled, built in its strategy's scope) like `model.fit` would.

    dataset: a tf.data.Dataset of global batches, at least (epochs * steps_per_epoch -
      initial_step) of them (e.g. `.repeat()`); the caller positions it at `initial_step`.
    initial_step: global steps already done (a resumed run): training starts in epoch
      initial_step // steps_per_epoch at batch initial_step % steps_per_epoch.
    validation_data: a finite dataset run through `test_step` after every epoch (val_* logs).
    times: filled with where the seconds went (input wait, steps, validation, the rest).
    Returns the History, as fit does.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    strategy = model.distribute_strategy
    build_state(model, dataset.element_spec)
    train_function, test_function = _step_functions(model, strategy)
    distributed = distribute_dataset(strategy, dataset)
    iterator = iter(distributed)
    logging.info("pipelines.loop: %d replica(s); global batch %s split into %s per replica; jit_compile=%s",
                 strategy.num_replicas_in_sync, _static_batch(dataset.element_spec),
                 per_replica_batch(distributed), bool(model.jit_compile))
    validation = None if validation_data is None else distribute_dataset(strategy, validation_data)

    callback_list = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
        verbose=verbose, epochs=epochs, steps=steps_per_epoch)
    model.stop_training = False
    first_epoch, first_batch = divmod(initial_step, steps_per_epoch)
    callback_list.on_train_begin()
    times = LoopTimes() if times is None else times
    clock = time.perf_counter
    epoch_logs: dict = {}
    for epoch in range(first_epoch, epochs):
        began = clock()
        fetching = stepping = validating = 0.0
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        logs: dict = {}
        for batch in range(first_batch if epoch == first_epoch else 0, steps_per_epoch):
            callback_list.on_train_batch_begin(batch)
            t0 = clock()
            data = next(iterator)
            t1 = clock()
            logs = _numbers(train_function(data))  # reading the logs waits for the step to finish
            t2 = clock()
            fetching, stepping = fetching + t1 - t0, stepping + t2 - t1
            if not times.steps:
                times.first_step = t2 - t1
            times.steps += 1
            callback_list.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        sync_replica_statistics(model)  # before validation, checkpoints and the export read them
        epoch_logs = dict(logs)
        if validation is not None and finite_losses(logs):
            model.reset_metrics()
            t0 = clock()
            val_logs = _numbers(test_function(validation))
            validating = clock() - t0
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        spent = clock() - began
        times.input, times.step, times.validation = times.input + fetching, times.step + stepping, \
            times.validation + validating
        times.other += spent - fetching - stepping - validating
        times.epochs.append(spent)
        if model.stop_training:
            break
    callback_list.on_train_end(epoch_logs)
    return model.history


# ---- resumable state ------------------------------------------------------------------------
def _named_optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """Every optimizer the model holds, by attribute name: the compiled `optimizer` and any other
    attribute (a GAN's `d_optimizer` / `g_optimizer`); one object may appear under two names."""
    named: dict[str, keras.optimizers.Optimizer] = {}
    if model.optimizer is not None:
        named["optimizer"] = model.optimizer
    for name, value in sorted(vars(model).items()):
        if isinstance(value, keras.optimizers.Optimizer):
            named.setdefault(name, value)
    return named


def _optimizers(model: keras.Model) -> list:
    unique: dict[int, Any] = {id(o): o for o in _named_optimizers(model).values()}
    return list(unique.values())


def state_variables(model: keras.Model) -> list:
    """Everything training changes: the model's variables (weights, BatchNorm statistics, seed
    generator states) and the variables of every optimizer the model holds (the compiled one and
    any other attribute, e.g. a GAN's d_optimizer): slots and iteration counts."""
    seen: set[int] = set()
    out = []
    for var in list(model.variables) + [v for opt in _optimizers(model) for v in opt.variables]:
        if id(var) not in seen:
            seen.add(id(var))
            out.append(var)
    return out


def _seed_generator_states(model: keras.Model) -> dict[str, Any]:
    """The state variable of every `keras.random.SeedGenerator` in the model, keyed by its object
    path: the path of the layer holding it in the model's checkpoint graph, then the attribute
    (e.g. a Dropout's "model/_operations/5/seed_generator", a GAN's "model/seed_generator").

    Needed because a SeedGenerator is no Trackable: under Keras 3.15 `tf.train.Checkpoint(model=m)`
    saves the weights, BatchNorm statistics and the optimizers' variables, but not a Dropout's or
    a GAN's seed_generator_state (checked with `tf.train.list_variables`), so a resumed run would
    draw other noise.
    """
    import tensorflow as tf

    states: dict[str, Any] = {}
    generators: set[int] = set()
    visited = {id(model)}
    queue = [("model", model)]
    while queue:  # breadth first, children by name: each object under its shortest path
        path, obj = queue.pop(0)
        if isinstance(obj, keras.layers.Layer):
            # public attributes first: a Dropout's "seed_generator" rather than Keras's own list
            for name, value in sorted(vars(obj).items(), key=lambda item: (item[0].startswith("_"), item[0])):
                if isinstance(value, keras.random.SeedGenerator):
                    found = [(name, value)]
                elif isinstance(value, (list, tuple)):
                    found = [(f"{name}/{i}", v) for i, v in enumerate(value)
                             if isinstance(v, keras.random.SeedGenerator)]
                else:
                    continue
                for key, generator in found:
                    if id(generator) not in generators:
                        generators.add(id(generator))
                        states[f"{path}/{key}"] = generator.state
        for name, child in sorted(tf.train.TrackableView.children(obj).items()):
            if id(child) not in visited and not isinstance(child, (keras.Variable, tf.Variable)):
                visited.add(id(child))
                queue.append((f"{path}/{name}", child))
    return states


def _checkpoint(model: keras.Model, step) -> Any:
    """The `tf.train.Checkpoint` of the training state; variables are matched by object path.

    model: Keras tracks its layers' weights and BatchNorm statistics and the compiled optimizer
      (layers by their place in the model, e.g. model/_operations/1/_kernel);
    optimizers: every optimizer by attribute name (slots, iterations);
    seed_generators: what Keras leaves untracked (see `_seed_generator_states`);
    step: the global step.
    Raises PipelineError if any of `state_variables(model)` would still be missing.
    """
    import tensorflow as tf

    root = tf.train.Checkpoint(model=model, optimizers=_named_optimizers(model),
                               seed_generators=_seed_generator_states(model), step=step)
    tracked = {id(obj) for obj in tf.train.TrackableView(root).descendants()}
    missing = [v.path for v in state_variables(model) if id(v) not in tracked]
    if missing:
        raise PipelineError(f"the backup cannot track these variables of the model: {', '.join(missing)}")
    return root


def broadcast_from_chief(strategy, variables: list, step: int) -> int:
    """Give every worker the chief's values of `variables` (and its `step`); returns the step.

    Only the chief reads the backup, so the workers need no shared disk. One all-reduce per
    dtype: replica 0 (the chief's) contributes its values, the others zeros, so the sum is
    exactly the chief's values. Every worker passes the same list (the same program built the
    same model), so the values arrive where they came from.
    """
    import tensorflow as tf

    arrays = [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables] + [np.asarray(step, np.int64)]
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(arrays):
        is_float = a.dtype.kind == "f" or "float" in a.dtype.name  # bfloat16 is not kind "f"
        groups.setdefault("float" if is_float else "int64", []).append(i)

    @tf.function
    def from_replica_0(flat):
        def replica_fn():
            first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
            return tf.where(first, flat, tf.zeros_like(flat))

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_fn), axis=None)

    result = list(arrays)
    for kind, indices in sorted(groups.items()):
        wire = np.float64 if kind == "float" else np.int64  # exact for float32/64 and integers
        flat = np.concatenate([arrays[i].astype(wire).ravel() for i in indices]) if indices else np.zeros(0, wire)
        summed = from_replica_0(flat).numpy()
        offset = 0
        for i in indices:
            size = arrays[i].size
            result[i] = summed[offset:offset + size].reshape(arrays[i].shape).astype(arrays[i].dtype)
            offset += size
    for var, value in zip(variables, result[:-1]):
        var.assign(value)
    return int(result[-1])


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _all_finite(variables: list) -> bool:
    import tensorflow as tf

    checks = [tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))) for v in variables
              if tf.as_dtype(v.dtype).is_floating]
    return bool(tf.reduce_all(tf.stack(checks))) if checks else True  # one device -> host sync


class Backup(keras.callbacks.Callback):
    """Resumable training state: a `tf.train.Checkpoint` under `directory`, replaced atomically.

    On disk (`directory`):
      backup.json                  {"format", "fingerprint", "step", "checkpoint"}: the pointer,
                                   written to backup.json.tmp, fsynced, then renamed over
      step-<8 digits>/state.index  the checkpoint it names (tf.train.Checkpoint.write of
      step-<8 digits>/state.data-00000-of-00001   `_checkpoint`), written whole into
                                   .tmp-step-<8 digits>/, fsynced, then renamed
    A save writes the new checkpoint folder, then the pointer, then deletes older folders, so a
    kill -9 at any moment leaves the previous pointer and the folder it names whole.

    Saved after every `every_steps` global steps (0: only at epoch ends) and at every epoch end,
    never with a NaN/inf loss or state. The pointer carries a fingerprint of the run's
    configuration and data, read before any variable: `restore` loads the checkpoint only when it
    matches (else the backup is deleted with a warning: a changed flag or changed data start
    afresh). A backup that cannot be read, or does not fit the model, is a PipelineError saying to
    delete it. Under multi_worker only the chief reads and writes it; `restore` then broadcasts
    the chief's state. `discard()` after the model is exported, as BackupAndRestore does.
    """

    POINTER = "backup.json"
    PREFIX = "state"
    FORMAT = 1

    def __init__(self, directory: str, fingerprint: str, *, every_steps: int = 0, chief: bool = True):
        super().__init__()
        self.directory = directory
        self.path = directory  # what an error message names (delete it to start afresh)
        self.pointer = os.path.join(directory, self.POINTER)
        self.fingerprint = fingerprint
        self.every_steps = int(every_steps)
        self.chief = chief
        self.step = 0
        self.saved_step: int | None = None
        self._root = None  # (model, its tf.train.Checkpoint, the step variable)

    # ---- the checkpoint object ----------------------------------------------------------------
    def _state(self, model: keras.Model):
        import tensorflow as tf

        if self._root is None or self._root[0] is not model:
            with tf.init_scope():
                step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self._root = (model, _checkpoint(model, step), step)
        return self._root[1], self._root[2]

    def _unreadable(self, why: str) -> PipelineError:
        return PipelineError(f"backup {self.path} is unreadable ({why}); delete it to start afresh")

    # ---- restore --------------------------------------------------------------------------------
    def restore(self, model: keras.Model) -> int:
        """Load the backup into `model` if it is this run's; returns the global step to start at."""
        import tensorflow as tf

        with model.distribute_strategy.scope():  # slots must exist to be restored (as BackupAndRestore does)
            for optimizer in _optimizers(model):
                if not optimizer.built:
                    optimizer.build(model.trainable_variables)
        checkpoint, step_variable = self._state(model)
        step = 0
        if self.chief and os.path.exists(self.pointer):
            step = self._load(checkpoint, step_variable)
        if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            step = broadcast_from_chief(model.distribute_strategy, state_variables(model), step)
        self.step = self.saved_step = step
        return step

    def _read_pointer(self) -> dict:
        try:
            with open(self.pointer) as f:
                meta = json.load(f)
            name = meta.get("checkpoint")
            if (meta.get("format") != self.FORMAT or not isinstance(meta.get("step"), int)
                    or not isinstance(name, str) or not name.startswith("step-") or os.sep in name):
                raise ValueError("unknown format")
            return meta
        except (OSError, ValueError, AttributeError) as err:
            raise self._unreadable(f"{self.POINTER}: {type(err).__name__}") from None

    def _load(self, checkpoint, step_variable) -> int:
        meta = self._read_pointer()
        if meta.get("fingerprint") != self.fingerprint:
            logging.warning("backup %s is from another configuration or other data; starting afresh", self.path)
            self._clear()
            return 0
        prefix = os.path.join(self.directory, meta["checkpoint"], self.PREFIX)
        try:
            status = checkpoint.read(prefix)
            # Every object of the model and every value of the checkpoint matched by object path.
            status.assert_consumed()
        except AssertionError as err:
            first = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:160]
            raise PipelineError(f"backup {self.path} does not match the model ({first}); "
                                "delete it to start afresh") from None
        except Exception as err:  # noqa: BLE001 - the reader raises OpErrors, IndexError ("Read less bytes"), ...
            raise self._unreadable(f"{meta.get('checkpoint')}: {type(err).__name__}") from None
        if int(step_variable.numpy()) != meta["step"]:
            raise self._unreadable(f"step {int(step_variable.numpy())} in the checkpoint, "
                                   f"{meta['step']} in {self.POINTER}")
        logging.info("resuming from backup %s at global step %d", self.path, meta["step"])
        return meta["step"]

    # ---- save -----------------------------------------------------------------------------------
    def save(self) -> None:
        if not self.chief or self.saved_step == self.step:
            return
        checkpoint, step_variable = self._state(self.model)
        # A step's loss is computed before its update: a finite loss can come with diverged weights.
        if not _all_finite(state_variables(self.model)):
            logging.warning("not backing up step %d: the training state holds NaN/inf", self.step)
            return
        os.makedirs(self.directory, exist_ok=True)
        name, n = f"step-{self.step:08d}", 0
        while os.path.exists(os.path.join(self.directory, name)):  # never touch a complete folder before the commit
            n += 1
            name = f"step-{self.step:08d}-{n}"
        final = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, f".tmp-{name}")
        shutil.rmtree(tmp, ignore_errors=True)  # left by a kill during an earlier save
        step_variable.assign(self.step)
        checkpoint.write(os.path.join(tmp, self.PREFIX))
        for entry in os.listdir(tmp):
            _fsync(os.path.join(tmp, entry))
        _fsync(tmp)
        os.replace(tmp, final)
        meta = {"format": self.FORMAT, "fingerprint": self.fingerprint, "step": self.step, "checkpoint": name}
        with open(self.pointer + ".tmp", "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(self.pointer + ".tmp", self.pointer)  # the commit: a kill before it keeps the old one
        _fsync(self.directory)
        self._clear(keep=name)
        self.saved_step = self.step

    def _clear(self, keep: str | None = None) -> None:
        """Delete every checkpoint folder and temporary but `keep` (and, without `keep`, the pointer)."""
        if not os.path.isdir(self.directory):
            return
        for entry in os.listdir(self.directory):
            path = os.path.join(self.directory, entry)
            if entry == keep or (keep is not None and entry == self.POINTER):
                continue
            if entry.startswith(("step-", ".tmp-")) and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif entry == self.POINTER or entry == self.POINTER + ".tmp":
                os.remove(path)

    # ---- callback hooks ---------------------------------------------------------------------------
    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.every_steps and self.step % self.every_steps == 0 and finite_losses(logs):
            # Every worker takes this branch at the same step (the logs are all-reduced).
            sync_replica_statistics(self.model)
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if finite_losses(logs):  # the loop synced the replicas' statistics before this
            self.save()

    def discard(self) -> None:
        if self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
