"""pipelines.loop.Backup on tf.train.Checkpoint: what it saves (by object path), bit-identical
resume through `loop.train` for a classifier and for the GAN's two optimizers, the fingerprint
check, leftovers of a kill, unreadable or foreign backups, NaN state, kill -9 during saves, a
restore under MirroredStrategy and (large) two MultiWorkerMirroredStrategy workers."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from pipelines import loop
from pipelines.artifacts import PipelineError
from tests.pipelines.conftest import Interrupt, Killed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
STEPS, EPOCHS = 4, 3  # 12 global steps


@contextlib.contextmanager
def deterministic(seed=0):
    was = tf_config.is_op_determinism_enabled()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            tf_config.disable_op_determinism()


def classifier(lookahead_every: int = 0):
    """Conv, BatchNorm (moving statistics), Dropout (a seed generator), CoupledSGD with momentum
    and a step schedule (and lookahead's slow weights): every kind of state a resume must bring back."""
    from kcv.optim.coupled_decay import CoupledSGD
    from kcv.optim.schedules import build_schedule

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    x = keras.layers.Dropout(0.5, seed=3, name="drop")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))
    schedule = build_schedule("step", 0.2, STEPS, lr_period=1, lr_decay=0.5)
    model.compile(optimizer=CoupledSGD(schedule, momentum=0.9, l2=1e-3, lookahead_every=lookahead_every,
                                       total_steps=EPOCHS * STEPS),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def classifier_lookahead():  # syncs after steps 4 and 8 (the resume below restarts at 6) and 12
    return classifier(lookahead_every=4)


def classifier_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 6, 6, 3)).astype("float32")
    y = (np.arange(32) % 3).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=1).batch(8, drop_remainder=True).repeat()


def gan():
    from kcv.models import get_model

    model = get_model("gan_gaussian", seed=0)
    model.compile(d_optimizer=keras.optimizers.Adam(0.05), g_optimizer=keras.optimizers.Adam(0.005),
                  jit_compile=False)
    return model


def gan_data():
    points = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    return tf.data.Dataset.from_tensor_slices(points).shuffle(64, seed=1).batch(16, drop_remainder=True).repeat()


def values(model):
    return {i: keras.ops.convert_to_numpy(v) for i, v in enumerate(loop.state_variables(model))}


def assert_same_state(a, b):
    va, vb = loop.state_variables(a), loop.state_variables(b)
    assert [v.shape for v in va] == [v.shape for v in vb]
    for x, y in zip(va, vb):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(x), err_msg=x.path)


def entries(prefix):
    return {name for name, _ in tf.train.list_variables(prefix)} - {"_CHECKPOINTABLE_OBJECT_GRAPH"}


def saved(tmp_path, model, step=4, fingerprint="fp"):
    backup = loop.Backup(str(tmp_path), fingerprint)
    backup.set_model(model)
    backup.step = step
    backup.save()
    return backup


def pointer(directory):
    with open(os.path.join(directory, loop.Backup.POINTER)) as f:
        return json.load(f)


# ---- what is saved ---------------------------------------------------------------------------
@pytest.mark.parametrize("build, seed_key, optimizers", [
    (classifier, "seed_generators/model.S_operations.S5.Sseed_generator", ["model/optimizer/"]),
    (gan, "seed_generators/model.Sseed_generator", ["model/optimizer/", "model/d_optimizer/"]),
])
def test_checkpoint_holds_every_state_variable_by_object_path(tmp_path, build, seed_key, optimizers):
    model = build()
    loop.Backup(str(tmp_path), "fp").restore(model)  # builds the optimizers' slots
    saved(tmp_path, model)
    meta = pointer(tmp_path)
    assert meta == {"format": 1, "fingerprint": "fp", "step": 4, "checkpoint": "step-00000004"}
    assert sorted(os.listdir(tmp_path)) == ["backup.json", "step-00000004"]
    folder = tmp_path / "step-00000004"
    assert sorted(os.listdir(folder)) == ["state.data-00000-of-00001", "state.index"]
    keys = entries(str(folder / "state"))
    # one entry per state variable (weights, BN statistics, seed states, every optimizer's) + step
    assert len(keys) == len(loop.state_variables(model)) + 1
    assert "step/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert f"{seed_key}/.ATTRIBUTES/VARIABLE_VALUE" in keys
    for prefix in optimizers:
        assert any(k.startswith(prefix + "_iterations/") for k in keys), prefix
    assert tf.train.load_checkpoint(str(folder / "state")).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4


def test_a_layer_more_is_another_object_path_not_a_silent_load(tmp_path):
    # Same variables, same shapes, same order: the shape-order format loaded this silently. By
    # object path the Dense layer moved (another _operations index), so the backup does not fit.
    saved(tmp_path, classifier())
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    x = keras.layers.Dropout(0.5, seed=3)(keras.layers.Identity()(x))
    other = keras.Model(inputs, keras.layers.Dense(3)(x))
    other.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    with pytest.raises(PipelineError, match=r"^backup .* does not match the model .*; delete it to start afresh$"):
        loop.Backup(str(tmp_path), "fp").restore(other)


# ---- bit-identical resume ----------------------------------------------------------------------
@pytest.mark.parametrize("build, data", [(classifier, classifier_data), (classifier_lookahead, classifier_data),
                                         (gan, gan_data)], ids=["classifier", "lookahead", "gan"])
def test_resume_after_an_interruption_equals_the_uninterrupted_run(tmp_path, build, data):
    directory = str(tmp_path / "backup")
    with deterministic():
        reference = build()
        loop.train(reference, data(), epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0)

        interrupted = build()
        backup = loop.Backup(directory, "fp", every_steps=3)
        assert backup.restore(interrupted) == 0  # nothing to resume yet
        with pytest.raises(Killed):
            loop.train(interrupted, data(), epochs=EPOCHS, steps_per_epoch=STEPS,
                       callbacks=[backup, Interrupt(7)], verbose=0)
        assert backup.saved_step == 6  # saved after steps 3, 4 (epoch end) and 6; step 7 was lost
        assert sorted(os.listdir(directory)) == ["backup.json", "step-00000006"]

        resumed = build()  # a FRESH model, built the same way
        assert not np.array_equal(values(resumed)[0], values(interrupted)[0])
        again = loop.Backup(directory, "fp", every_steps=3)
        start = again.restore(resumed)
        assert start == 6
        for optimizer in loop._optimizers(resumed):
            assert int(optimizer.iterations) == 6
        loop.train(resumed, data().skip(start), epochs=EPOCHS, steps_per_epoch=STEPS, initial_step=start,
                   callbacks=[again], verbose=0)
    assert_same_state(reference, resumed)
    assert loop.weights_digest(resumed) == loop.weights_digest(reference)
    assert any("seed_generator_state" in v.path for v in loop.state_variables(reference))
    for optimizer in loop._optimizers(resumed):
        assert int(optimizer.iterations) == EPOCHS * STEPS
    assert pointer(directory)["step"] == EPOCHS * STEPS
    again.discard()
    assert not os.path.exists(directory)


def test_the_restored_schedule_position_is_the_interrupted_runs(tmp_path):
    model = classifier()
    loop.train(model, classifier_data(), epochs=3, steps_per_epoch=STEPS, verbose=0)
    saved(tmp_path, model, step=12)
    fresh = classifier()
    assert loop.Backup(str(tmp_path), "fp").restore(fresh) == 12
    # epoch e (0-based) runs at 0.2 * 0.5**e: after 12 steps the rate is epoch 3's, 0.025
    assert int(fresh.optimizer.iterations) == 12
    assert float(fresh.optimizer.learning_rate) == pytest.approx(0.025)


# ---- fingerprints, leftovers, unreadable backups -------------------------------------------------
def test_another_fingerprint_starts_afresh_and_drops_the_backup(tmp_path, caplog):
    model = classifier()
    loop.train(model, classifier_data(), epochs=1, steps_per_epoch=STEPS, verbose=0)
    saved(tmp_path, model, fingerprint="config-a")
    fresh = classifier()
    before = values(fresh)
    with caplog.at_level("WARNING"):
        assert loop.Backup(str(tmp_path), "config-b").restore(fresh) == 0
    assert "from another configuration or other data; starting afresh" in caplog.text
    after = values(fresh)
    assert all(np.array_equal(before[i], after[i]) for i in before)  # nothing loaded
    assert os.listdir(tmp_path) == []


def test_leftovers_of_a_kill_are_ignored_then_cleaned(tmp_path):
    model = classifier()
    loop.train(model, classifier_data(), epochs=1, steps_per_epoch=STEPS, verbose=0)
    saved(tmp_path, model, step=4)
    # a kill during the next save: a half-written folder, a half-written pointer, or a whole
    # folder whose pointer was never written
    (tmp_path / ".tmp-step-00000006").mkdir()
    (tmp_path / ".tmp-step-00000006" / "state.index").write_bytes(b"half")
    (tmp_path / "backup.json.tmp").write_text('{"format": 1, "fingerpr')
    (tmp_path / "step-00000008").mkdir()
    fresh = classifier()
    backup = loop.Backup(str(tmp_path), "fp")
    assert backup.restore(fresh) == 4
    assert_same_state(model, fresh)
    backup.set_model(fresh)
    backup.step = 8
    backup.save()  # the unnamed step-00000008 is not overwritten before the commit
    assert pointer(tmp_path)["checkpoint"] == "step-00000008-1"
    assert sorted(os.listdir(tmp_path)) == ["backup.json", "step-00000008-1"]
    assert loop.Backup(str(tmp_path), "fp").restore(classifier()) == 8


def _one_line_error(tmp_path):
    with pytest.raises(PipelineError) as err:
        loop.Backup(str(tmp_path), "fp").restore(classifier())
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"backup {tmp_path} is unreadable")
    assert message.endswith("delete it to start afresh")
    return message


def test_a_truncated_checkpoint_is_a_one_line_pipeline_error(tmp_path):
    saved(tmp_path, classifier())
    data = tmp_path / "step-00000004" / "state.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    _one_line_error(tmp_path)


def test_flipped_bytes_in_the_checkpoint_are_a_pipeline_error(tmp_path):
    saved(tmp_path, classifier())
    data = tmp_path / "step-00000004" / "state.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    for i in range(0, len(raw), 7):
        raw[i] ^= 0xFF
    data.write_bytes(bytes(raw))
    _one_line_error(tmp_path)  # the tensors' checksums


@pytest.mark.parametrize("damage", ["index", "pointer", "folder"])
def test_a_damaged_index_pointer_or_missing_folder_is_a_pipeline_error(tmp_path, damage):
    import shutil

    saved(tmp_path, classifier())
    if damage == "index":
        (tmp_path / "step-00000004" / "state.index").write_bytes(b"not an index")
    elif damage == "pointer":
        (tmp_path / "backup.json").write_text("{not json")
    else:
        shutil.rmtree(tmp_path / "step-00000004")
    _one_line_error(tmp_path)


def test_non_finite_state_is_never_saved(tmp_path, caplog):
    model = classifier()
    loop.train(model, classifier_data(), epochs=1, steps_per_epoch=STEPS, verbose=0)
    backup = saved(tmp_path, model, step=4)
    kernel = model.get_layer("dense").kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    backup.step = 5
    with caplog.at_level("WARNING"):
        backup.save()
    assert "not backing up step 5" in caplog.text
    assert pointer(tmp_path)["step"] == 4 and sorted(os.listdir(tmp_path)) == ["backup.json", "step-00000004"]
    # and a non-finite loss skips the step's save in the callback
    backup.on_train_batch_end(0, {"loss": float("nan")})
    backup.every_steps = 1
    backup.on_epoch_end(0, {"loss": float("inf")})
    assert pointer(tmp_path)["step"] == 4


# ---- kill -9 while saving -----------------------------------------------------------------------
_SAVER = textwrap.dedent("""
    import sys
    import keras, numpy as np
    sys.path.insert(0, sys.argv[2])
    from loop_test import classifier
    from pipelines import loop
    model = classifier()
    backup = loop.Backup(sys.argv[1], "fp")
    backup.restore(model)
    backup.set_model(model)
    print("ready", flush=True)
    for step in range(1, 100000):  # save after save: a kill lands inside one
        for v in model.trainable_variables:
            v.assign(np.full(v.shape, step, "float32"))
        backup.step = step
        backup.save()
""")


def test_kill_9_at_any_moment_leaves_the_previous_backup_readable(tmp_path):
    directory = str(tmp_path / "backup")
    rng = np.random.default_rng(0)
    for attempt in range(2):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, directory, os.path.dirname(__file__)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]
            deadline = time.time() + 60
            while not os.path.exists(os.path.join(directory, loop.Backup.POINTER)) and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(float(rng.uniform(0.3, 1.5)))  # a few saves later, at a random moment
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        model = classifier()
        step = loop.Backup(directory, "fp").restore(model)
        assert step >= 1
        for v in model.trainable_variables:  # the weights of exactly that step
            np.testing.assert_array_equal(v.numpy(), np.full(v.shape, step, "float32"))


# ---- MirroredStrategy ------------------------------------------------------------------------------
_MIRRORED = textwrap.dedent("""
    import sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    sys.path.insert(0, sys.argv[2])
    from loop_test import classifier, classifier_data, STEPS
    from pipelines import loop
    source = classifier()
    loop.train(source, classifier_data(), epochs=1, steps_per_epoch=STEPS, verbose=0)
    backup = loop.Backup(sys.argv[1], "fp")
    backup.set_model(source)
    backup.step = STEPS
    backup.save()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = classifier()
    step = loop.Backup(sys.argv[1], "fp").restore(model)
    worst = 0.0
    for a, b in zip(loop.state_variables(source), loop.state_variables(model)):
        copies = [np.asarray(c) for c in strategy.experimental_local_results(b.value)]
        worst = max([worst] + [float(np.max(np.abs(c.astype("float64") - np.asarray(a.numpy()).astype("float64"))))
                               for c in copies])
        assert len(copies) == 2, b.path
    print("STEP", step, "COPIES", len(copies), "WORST", worst)
""")


def test_restore_under_mirrored_strategy_sets_every_replica(tmp_path):
    out = subprocess.run([sys.executable, "-c", _MIRRORED, str(tmp_path), os.path.dirname(__file__)],
                         capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-6:] == ["STEP", str(STEPS), "COPIES", "2", "WORST", "0.0"]


# ---- MultiWorkerMirroredStrategy: only the chief writes and reads; the others get its state -----
_WORKER = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    sys.path.insert(0, sys.argv[2])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import keras
    from loop_test import classifier, classifier_data, STEPS
    from pipelines import loop
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    directory = os.path.join(sys.argv[1], f"w{index}")  # no shared disk
    with strategy.scope():
        trained = classifier()
    backup = loop.Backup(directory, "fp", every_steps=2, chief=index == 0)
    assert backup.restore(trained) == 0
    loop.train(trained, classifier_data(), epochs=1, steps_per_epoch=STEPS, callbacks=[backup], verbose=0)
    with strategy.scope():
        fresh = classifier()
    step = loop.Backup(directory, "fp", chief=index == 0).restore(fresh)
    iterations = int(keras.ops.convert_to_numpy(fresh.optimizer.iterations))
    print("RESULT", index, step, iterations, loop.weights_digest(trained), loop.weights_digest(fresh),
          os.path.isdir(directory), flush=True)
""")


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.large  # a two-process cluster, ~30 s
def test_multi_worker_chief_saves_and_restores_for_every_worker(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    procs = []
    try:
        for index in range(2):
            env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), os.path.dirname(__file__)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                          cwd=ROOT))
        outs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-3000:] + outs[1][1][-3000:]
    results = [[ln.split()[1:] for ln in out.splitlines() if ln.startswith("RESULT")][0] for out, _ in outs]
    chief, other = results
    # both restored the chief's step-4 state (worker 1 from the broadcast, without a backup of its own)
    assert chief[:3] == ["0", str(STEPS), str(STEPS)] and other[:3] == ["1", str(STEPS), str(STEPS)]
    assert chief[3] == chief[4] == other[3] == other[4]  # trained == restored, on both workers
    assert chief[5] == "True" and other[5] == "False"
    assert pointer(tmp_path / "w0")["step"] == STEPS


def test_a_run_killed_after_its_last_step_only_exports_on_the_rerun():
    # The backup after the last step (2 epochs x 4 steps) resumes at step 8: nothing left to train.
    model = classifier()
    history = loop.train(model, classifier_data(), epochs=2, steps_per_epoch=4, initial_step=8, verbose=0)
    assert history.history == {} and int(model.optimizer.iterations) == 0


# ---- where the seconds go -------------------------------------------------------------------------
def test_loop_times_split_input_wait_validation_and_callbacks(tmp_path):
    """A 50 ms input stage shows as input wait, a 100 ms callback per epoch as `other`; the parts sum
    to the epochs' seconds and only the steps this run executed are counted (a resume at step 6)."""

    def slow(x, y):
        time.sleep(0.05)
        return x, y

    # skipped before the slow stage: each of the 6 fetches waits 50 ms itself
    data = classifier_data().skip(6).map(lambda x, y: tf.numpy_function(slow, [x, y], (x.dtype, y.dtype),
                                                                         stateful=True)).map(
        lambda x, y: (tf.ensure_shape(x, (None, 6, 6, 3)), tf.ensure_shape(y, (None,))))
    # no prefetching (tf.data injects a prefetch by default): it would fetch ahead while the first
    # step compiles and hide the waits this test counts
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False
    options.autotune.enabled = False
    data = data.with_options(options)

    class Pause(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.1)

    times = loop.LoopTimes()
    loop.train(classifier(), data, epochs=EPOCHS, steps_per_epoch=STEPS, initial_step=6,
               validation_data=classifier_data().take(2), callbacks=[Pause()], verbose=0, times=times)
    assert times.steps == EPOCHS * STEPS - 6
    assert len(times.epochs) == 2  # epoch 2 from batch 2, then epoch 3
    assert times.input >= 0.9 * 0.05 * times.steps
    assert times.other >= 2 * 0.1 and times.validation > 0 and 0 < times.first_step < times.step
    assert times.input + times.step + times.validation + times.other == pytest.approx(sum(times.epochs))
    report = times.as_dict()
    assert set(report) == {"input", "step", "first_step", "validation", "other", "steps", "epochs"}
    assert report["steps"] == 6
