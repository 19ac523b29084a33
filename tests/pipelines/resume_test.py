"""Resuming after a failure: reproducible examples, the data order after a skip, the Backup state,
an interrupted Trainer rerun, a leftover Pusher temporary, and (large) kill -9 of kcv-train."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines import artifacts, distribute, loop
from pipelines.components import evaluator, example_gen, pusher, trainer, transform
from pipelines.config import build_config
from pipelines.tasks import classification

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def small(root, **overrides):
    cfg = build_config("resnet18_cifar10", pipeline_root=os.path.join(root, "runs"),
                       serving_model_dir=os.path.join(root, "saved_models", "m"), embedded_examples=100,
                       epochs=2, batch_size=10, num_shards=2, lr=0.05, lr_period=1, lr_decay=0.5)
    return dataclasses.replace(cfg, **{"model": "simple_cnn", "model_kwargs": {"width": 4}, "min_accuracy": 0.0,
                                       "deterministic": True, **overrides})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """ExampleGen + Transform once: (cfg, examples dir)."""
    cfg = small(str(tmp_path_factory.mktemp("resume")))
    examples = example_gen.run(cfg, "r0")
    transform.run(cfg, "r0")
    return cfg, examples


def _train_digest(examples):
    return trainer.data_fingerprint(build_config("resnet18_cifar10"), examples, {}, [], 1)


def test_example_gen_rerun_in_another_process_gives_the_same_examples(prepared, tmp_path):
    # The rerun of a killed command redoes ExampleGen in a new process (a new run id; here also a
    # new root, so the embedded images are generated again): the examples must be the same, in
    # the same order, so that the backup's data fingerprint still matches. (The shards' bytes
    # may differ: a tf.train.Example's feature map is serialized in a per-process order.)
    cfg, examples = prepared
    other = dataclasses.replace(cfg, pipeline_root=str(tmp_path / "runs"))
    code = ("import sys; from pipelines.config import Config; from pipelines.components import example_gen; "
            "print(example_gen.run(Config.read(sys.argv[1]), 'r1'))")
    out = subprocess.run([sys.executable, "-c", code, other.write(str(tmp_path / "config.json"))],
                         capture_output=True, text=True, timeout=300, env={**ENV, "PYTHONHASHSEED": "12345"})
    assert out.returncode == 0, out.stderr[-3000:]
    again = out.stdout.strip().splitlines()[-1]
    assert again == os.path.join(other.pipeline_root, "ExampleGen", "examples", "r1")
    assert _train_digest(again) == _train_digest(examples)
    # another seed gives other examples, hence another fingerprint
    seeded = example_gen.run(dataclasses.replace(cfg, pipeline_root=str(tmp_path / "other"), seed=1), "r2")
    assert _train_digest(seeded) != _train_digest(examples)


def test_skipping_the_stream_resumes_the_data_order(prepared):
    # 90 train examples / batch 10 = 9 batches per pass; batches 7..10 cross into the second pass,
    # which is reshuffled and gets new augmentation seeds. A fresh pipeline skipped by 7 must
    # yield exactly batches 7..10 of the uninterrupted stream (images after augmentation too).
    cfg, examples = prepared

    def stream():
        return classification.dataset(cfg, examples, "train", training=True, batch_size=10).repeat()

    uninterrupted = [(x.numpy(), y.numpy()) for x, y in stream().take(11)]
    resumed = [(x.numpy(), y.numpy()) for x, y in stream().skip(7).take(4)]
    for (xa, ya), (xb, yb) in zip(uninterrupted[7:], resumed):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    # the second pass really is another order (else the check above would be weak)
    assert not np.array_equal(uninterrupted[0][1], uninterrupted[9][1])


def _model(seed=0):
    """Dropout (a seed generator), BatchNorm (moving statistics) and momentum SGD with a step
    schedule: every kind of state a resume must restore."""
    from kcv.optim.coupled_decay import CoupledSGD
    from kcv.optim.schedules import build_schedule

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    x = keras.layers.Dropout(0.5, seed=3, name="drop")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))
    schedule = build_schedule("step", 0.2, 4, lr_period=1, lr_decay=0.5)  # 4 steps per epoch
    model.compile(optimizer=CoupledSGD(schedule, momentum=0.9, l2=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def _stream():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 6, 6, 3)).astype("float32")
    y = (np.arange(32) % 3).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=1).batch(8, drop_remainder=True).repeat()


class Killed(Exception):
    pass


class Interrupt(keras.callbacks.Callback):
    """Raises Killed after step `at` (counted from the run's start), as a kill would stop it."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            raise Killed(f"after step {self.at}")


def test_backup_resume_mid_epoch_equals_the_uninterrupted_run(tmp_path):
    with distribute.precision_and_seed("none", 0, True):
        reference = _model()
        loop.train(reference, _stream(), epochs=3, steps_per_epoch=4, verbose=0)

        interrupted = _model()
        backup = loop.Backup(str(tmp_path / "backup"), "fp", every_steps=3)
        assert backup.restore(interrupted) == 0  # nothing to resume yet
        with pytest.raises(Killed):
            loop.train(interrupted, _stream(), epochs=3, steps_per_epoch=4, callbacks=[backup, Interrupt(7)],
                       verbose=0)
        # saved after steps 3, 4 (epoch end) and 6; step 7 was lost with the "kill"
        assert backup.saved_step == 6

        resumed = _model()
        again = loop.Backup(str(tmp_path / "backup"), "fp", every_steps=3)
        start = again.restore(resumed)
        assert start == 6 and int(resumed.optimizer.iterations) == 6  # epoch 2 (1-based), batch 3
        loop.train(resumed, _stream().skip(start), epochs=3, steps_per_epoch=4, initial_step=start,
                   callbacks=[again], verbose=0)
    state_ref, state_res = loop.state_variables(reference), loop.state_variables(resumed)
    assert [v.shape for v in state_ref] == [v.shape for v in state_res]
    assert any("seed_generator_state" in v.path for v in state_ref)  # Dropout's noise position too
    for a, b in zip(state_ref, state_res):
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=a.path)
    # 12 steps done; epoch e (0-based) runs at 0.2 * 0.5**e, so the restored schedule now gives
    # the rate of step 13, in epoch 3: 0.2 * 0.5**3 = 0.025
    assert int(resumed.optimizer.iterations) == 12
    assert float(resumed.optimizer.learning_rate) == pytest.approx(0.025)


def test_a_run_killed_after_its_last_step_only_exports_on_the_rerun():
    # The backup after the last step (2 epochs x 4 steps) resumes at step 8: nothing left to train.
    model = _model()
    history = loop.train(model, _stream(), epochs=2, steps_per_epoch=4, initial_step=8, verbose=0)
    assert history.history == {} and int(model.optimizer.iterations) == 0


def test_backup_of_another_run_is_discarded_and_temporaries_ignored(tmp_path):
    model = _model()
    loop.train(model, _stream(), epochs=1, steps_per_epoch=4, verbose=0)
    first = loop.Backup(str(tmp_path), "fingerprint-a")
    first.set_model(model)
    first.step = 4
    first.save()
    # a kill during a save leaves only the temporary: the last complete state.npz is used
    with open(tmp_path / "state.npz.tmp", "wb") as f:
        f.write(b"half a file")
    fresh = _model()
    assert loop.Backup(str(tmp_path), "fingerprint-a").restore(fresh) == 4
    np.testing.assert_array_equal(fresh.get_layer("dense").kernel.numpy(), model.get_layer("dense").kernel.numpy())
    # another configuration or other data (another fingerprint): start afresh, drop the backup
    assert loop.Backup(str(tmp_path), "fingerprint-b").restore(_model()) == 0
    assert not os.path.exists(tmp_path / "state.npz")


def test_interrupted_trainer_rerun_resumes_to_the_same_weights(prepared, monkeypatch):
    cfg, _ = prepared
    cfg = dataclasses.replace(cfg, backup_steps=4)
    backup_dir = os.path.join(cfg.pipeline_root, "Trainer", "model_run", "backup")
    reference = trainer.run(cfg, "a-reference")
    assert not os.path.exists(backup_dir)  # deleted after the export
    # 9 steps per epoch: backups after steps 4, 8, 9 (epoch end) and 12; interrupted after step 13
    monkeypatch.setattr(classification, "callbacks", lambda *args: [Interrupt(13)])
    with pytest.raises(Killed):
        trainer.run(cfg, "b-interrupted")
    assert not os.path.exists(os.path.join(cfg.pipeline_root, "Trainer", "model", "b-interrupted"))
    monkeypatch.undo()
    resumed = trainer.run(cfg, "c-resumed")
    summary = json.load(open(os.path.join(resumed, "training_summary.json")))
    assert summary["resumed_from_step"] == 12 and len(summary["history"]["loss"]) == 1  # epoch 2 only
    ref_summary = json.load(open(os.path.join(reference, "training_summary.json")))
    assert summary["weights_sha256"] == ref_summary["weights_sha256"]
    a = keras.saving.load_model(os.path.join(reference, "model.keras"))
    b = keras.saving.load_model(os.path.join(resumed, "model.keras"))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wb, wa)
    assert not os.path.exists(backup_dir)


def _tf_serving_versions(base):
    """Versions as TF Serving's file-system source lists them: integer-named subdirectories."""
    return sorted(int(d) for d in os.listdir(base) if d.isdigit() and os.path.isdir(os.path.join(base, d)))


def test_leftover_pusher_temporary_is_invisible_and_cleaned(tmp_path):
    # A SavedModel stand-in, blessed; version 1 already pushed; a kill during the second push
    # left the half-copied .tmp-2.
    cfg = small(str(tmp_path))
    model_dir = tmp_path / "runs" / "Trainer" / "model" / "m1"
    (model_dir / "Format-Serving" / "variables").mkdir(parents=True)
    (model_dir / "Format-Serving" / "saved_model.pb").write_bytes(b"pb")
    with artifacts.Publish(cfg.pipeline_root, artifacts.BLESSING, "b1") as out:
        open(os.path.join(out, "BLESSED"), "w").write(json.dumps({"model": str(model_dir), "reason": "ok"}))
    assert pusher.run(cfg, "p1").endswith(os.path.join("m", "1"))
    partial = os.path.join(cfg.serving_model_dir, ".tmp-2")
    os.makedirs(os.path.join(partial, "variables"))
    assert _tf_serving_versions(cfg.serving_model_dir) == [1]
    assert evaluator.last_pushed_version(cfg.serving_model_dir).endswith(os.path.join("m", "1"))
    # the rerun removes the leftover and pushes version 2 whole
    assert pusher.run(cfg, "p2").endswith(os.path.join("m", "2"))
    assert sorted(os.listdir(cfg.serving_model_dir)) == ["1", "2"]
    assert os.path.isfile(os.path.join(cfg.serving_model_dir, "2", "saved_model.pb"))


# ---- large: kill -9 of kcv-train mid-epoch, then the same command again ---------------------------
def _kcv_train(root, extra=()):
    return [sys.executable, "-m", "pipelines.train", "--experiment=resnet18_cifar10", "--model=simple_cnn",
            "--embedded_examples=200", "--epochs=2", "--batch_size=4", "--lr=0.02", "--lr_period=1",
            "--lr_decay=0.5", "--min_accuracy=0", "--deterministic", "--backup_steps=2",
            f"--pipeline_root={root}/runs", f"--serving_model_dir={root}/saved_models/m", *extra]


def _backup_step(path):
    try:
        with np.load(path) as data:
            return json.loads(str(data["__meta__"]))["step"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.large
def test_kill_9_mid_epoch_then_the_same_command_resumes_to_identical_weights(tmp_path):
    killed = tmp_path / "killed"
    state = killed / "runs" / "Trainer" / "model_run" / "backup" / "state.npz"
    # 200 images -> 180 train / batch 4 = 45 steps per epoch, 90 in all; a backup every 2 steps
    proc = subprocess.Popen(_kcv_train(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=tmp_path)
    try:
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None:
            step = _backup_step(state) if state.exists() else None
            if step is not None and step >= 6:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and not state.exists():
            proc.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    step = _backup_step(state)
    assert 6 <= step < 90 and step % 45 != 0, step  # mid-epoch, nothing exported yet
    assert not os.path.exists(killed / "runs" / "Trainer" / "model")

    rerun = subprocess.run(_kcv_train(killed), capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming at global step {step} of 90" in rerun.stderr
    reference = subprocess.run(_kcv_train(tmp_path / "reference"), capture_output=True, text=True, env=ENV,
                               cwd=tmp_path, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    def model_dir(out):
        return [ln.split("Trainer: ", 1)[1] for ln in out.stdout.splitlines() if ln.startswith("Trainer: ")][0]

    resumed = json.load(open(os.path.join(model_dir(rerun), "training_summary.json")))
    uninterrupted = json.load(open(os.path.join(model_dir(reference), "training_summary.json")))
    assert resumed["resumed_from_step"] == step and uninterrupted["resumed_from_step"] == 0
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"]
    a = keras.saving.load_model(os.path.join(model_dir(reference), "model.keras"))
    b = keras.saving.load_model(os.path.join(model_dir(rerun), "model.keras"))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wb, wa)
    assert not state.exists()  # the successful rerun deleted the backup
    assert sorted(os.listdir(killed / "saved_models" / "m")) == ["1"]
