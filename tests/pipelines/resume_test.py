"""Resuming after a failure through the pipeline: reproducible examples, the data order after a skip,
an interrupted Trainer rerun (one phase, and (large) in the second of two fine-tuning phases), a
leftover Pusher temporary, and (large) kill -9 of kcv-train.
The Backup itself (checkpoint contents, resume in loop.train, damaged files) is tested in loop_test.py."""
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from pipelines import artifacts
from pipelines.components import evaluator, example_gen, pusher, trainer
from pipelines.config import build_config
from pipelines.runner import run_pipeline
from pipelines.tasks import classification, get_task
from tests.pipelines.conftest import Interrupt, Killed

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def small(root, **dotted):
    cfg = build_config("resnet18_cifar10", {
        "paths": {"pipeline_root": os.path.join(root, "runs"), "serving_model_dir": os.path.join(root, "saved_models", "m")},
        "data": {"embedded_examples": 100, "num_shards": 2}, "model": {"name": "simple_cnn"},
        "training": {"epochs": 2, "batch_size": 10, "lr": 0.05, "lr_period": 1, "lr_decay": 0.5}})
    return cfg.replace(**{"model.kwargs": {"width": 4}, "evaluation.min_accuracy": 0.0, "runtime.deterministic": True,
                          **dotted})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """ExampleGen + Transform once: (cfg, examples dir, the run's artifacts)."""
    cfg = small(str(tmp_path_factory.mktemp("resume")))
    record = run_pipeline(cfg.replace(components=["ExampleGen", "Transform"]))
    return cfg, record.artifacts["examples"], record.artifacts


def _train(cfg, inputs, run_id):
    return trainer.run(cfg, get_task(cfg.task), inputs, run_id).outputs["model"]


def _train_digest(examples):
    return trainer.data_fingerprint(build_config("resnet18_cifar10"), examples, {}, [], 1)


def test_example_gen_rerun_in_another_process_gives_the_same_examples(prepared, tmp_path):
    # The rerun of a killed command redoes ExampleGen in a new process (a new run id; here also a
    # new root, so the embedded images are generated again): the examples must be the same, in
    # the same order, so that the backup's data fingerprint still matches. (The shards' bytes
    # may differ: a tf.train.Example's feature map is serialized in a per-process order.)
    cfg, examples, _ = prepared
    other = cfg.replace(**{"paths.pipeline_root": str(tmp_path / "runs")})
    code = ("import sys; from pipelines.config import Config; from pipelines.components import example_gen; "
            "from pipelines.tasks import get_task; cfg = Config.read(sys.argv[1]); "
            "print(example_gen.run(cfg, get_task(cfg.task), {}, 'r1').outputs['examples'])")
    out = subprocess.run([sys.executable, "-c", code, other.write(str(tmp_path / "config.json"))],
                         capture_output=True, text=True, timeout=300, env={**ENV, "PYTHONHASHSEED": "12345"})
    assert out.returncode == 0, out.stderr[-3000:]
    again = out.stdout.strip().splitlines()[-1]
    assert again == os.path.join(other.paths.pipeline_root, "ExampleGen", "examples", "r1")
    assert _train_digest(again) == _train_digest(examples)
    # another seed gives other examples, hence another fingerprint
    seeded_cfg = cfg.replace(**{"paths.pipeline_root": str(tmp_path / "other"), "runtime.seed": 1})
    seeded = example_gen.run(seeded_cfg, get_task(cfg.task), {}, "r2").outputs["examples"]
    assert _train_digest(seeded) != _train_digest(examples)


def test_skipping_the_stream_resumes_the_data_order(prepared):
    # 90 train examples / batch 10 = 9 batches per pass; batches 7..10 cross into the second pass,
    # which is reshuffled and gets new augmentation seeds. A fresh pipeline skipped by 7 must
    # yield exactly batches 7..10 of the uninterrupted stream (images after augmentation too).
    cfg, examples, _ = prepared

    def stream():
        return classification._dataset(cfg, examples, "train", (32, 32), 3, True, 10).repeat()

    uninterrupted = [(x.numpy(), y.numpy()) for x, y in stream().take(11)]
    resumed = [(x.numpy(), y.numpy()) for x, y in stream().skip(7).take(4)]
    for (xa, ya), (xb, yb) in zip(uninterrupted[7:], resumed):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    # the second pass really is another order (else the check above would be weak)
    assert not np.array_equal(uninterrupted[0][1], uninterrupted[9][1])


def test_interrupted_trainer_rerun_resumes_to_the_same_weights(prepared, monkeypatch):
    cfg, _, inputs = prepared
    cfg = cfg.replace(**{"training.backup_steps": 4})
    model_run = os.path.join(cfg.paths.pipeline_root, "Trainer", "model_run")

    def backups():
        return [d for d in os.listdir(model_run) if d.startswith("backup")] if os.path.isdir(model_run) else []
    reference = _train(cfg, inputs, "a-reference")
    assert not backups()  # deleted after the export
    # 9 steps per epoch: backups after steps 4, 8, 9 (epoch end) and 12; interrupted after step 13
    monkeypatch.setattr(classification.Classification, "callbacks", lambda self, *args: [Interrupt(13)])
    with pytest.raises(Killed):
        _train(cfg, inputs, "b-interrupted")
    assert not os.path.exists(os.path.join(cfg.paths.pipeline_root, "Trainer", "model", "b-interrupted"))
    assert len(backups()) == 1
    monkeypatch.undo()
    resumed = _train(cfg, inputs, "c-resumed")
    summary = json.load(open(os.path.join(resumed, "training_summary.json")))
    assert summary["resumed_from_step"] == 12 and len(summary["history"]["loss"]) == 1  # epoch 2 only
    ref_summary = json.load(open(os.path.join(reference, "training_summary.json")))
    assert summary["weights_sha256"] == ref_summary["weights_sha256"]
    a = keras.saving.load_model(os.path.join(reference, "model.keras"))
    b = keras.saving.load_model(os.path.join(resumed, "model.keras"))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wb, wa)
    assert not backups()


@pytest.mark.large  # three two-phase trainings of a small backbone: ~1 minute on 2 idle cores
def test_a_trainer_killed_in_its_second_phase_resumes_that_phase(tmp_path, monkeypatch):
    """Two fine-tuning phases, each with its own backup: the rerun restores phase 1 at its end (no
    step retrained) and phase 2 where it was, to the weights of the uninterrupted run."""
    cfg = build_config("dog_breeds", {
        "paths": {"pipeline_root": str(tmp_path / "runs"), "serving_model_dir": str(tmp_path / "saved")},
        "model": {"backbone": "mobilenet_v3_small", "weights": "none", "image_size": [32, 32],
                  "keep_imagenet_top": False, "trainable_layers": 2},
        "data": {"embedded_examples": 40, "augment": "flip"},
        "training": {"epochs": 1, "fine_tune_epochs": 1, "batch_size": 8, "backup_steps": 2},
        "runtime": {"deterministic": True}})
    inputs = run_pipeline(cfg.replace(components=["ExampleGen", "Transform"])).artifacts
    model_run = os.path.join(cfg.paths.pipeline_root, "Trainer", "model_run")

    def backups():
        return sorted(d for d in os.listdir(model_run) if d.startswith("backup")) if os.path.isdir(model_run) else []
    reference = json.load(open(os.path.join(_train(cfg, inputs, "a-reference"), "training_summary.json")))
    steps = reference["steps_per_epoch"]  # 35 training examples, batch 8: 4 steps a phase
    assert [p["steps"] for p in reference["phases"]] == [steps, steps] and not backups()
    stop = Interrupt(steps + 3)  # one callback object across both phases: killed after phase 2's step 3
    monkeypatch.setattr(classification.Classification, "callbacks", lambda self, *args: [stop])
    with pytest.raises(Killed):
        _train(cfg, inputs, "b-interrupted")
    assert len(backups()) == 2  # phase 1's (at its end) and phase 2's (at its step 2)
    monkeypatch.undo()
    resumed = json.load(open(os.path.join(_train(cfg, inputs, "c-resumed"), "training_summary.json")))
    assert [p["resumed_from_step"] for p in resumed["phases"]] == [steps, 2]
    assert resumed["weights_sha256"] == reference["weights_sha256"]
    assert not backups()


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
    with artifacts.Publish(cfg.paths.pipeline_root, artifacts.BLESSING, "b1") as out:
        open(os.path.join(out, "BLESSED"), "w").write(json.dumps({"model": str(model_dir), "reason": "ok"}))
    inputs = {"model": str(model_dir), "blessing": artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.BLESSING) + "/b1"}
    task, serving = get_task(cfg.task), cfg.paths.serving_model_dir
    assert pusher.run(cfg, task, inputs, "p1").info["pushed_to"].endswith(os.path.join("m", "1"))
    partial = os.path.join(serving, ".tmp-2-p0")
    os.makedirs(os.path.join(partial, "variables"))
    assert _tf_serving_versions(serving) == [1]
    assert evaluator.last_pushed_version(serving).endswith(os.path.join("m", "1"))
    # the rerun removes the leftover and pushes version 2 whole
    assert pusher.run(cfg, task, inputs, "p2").info["pushed_to"].endswith(os.path.join("m", "2"))
    assert sorted(d for d in os.listdir(serving) if not d.startswith(".")) == ["1", "2"]
    assert not [d for d in os.listdir(serving) if d.startswith(".tmp")]
    assert os.path.isfile(os.path.join(serving, "2", "saved_model.pb"))


# ---- large: kill -9 of kcv-train mid-epoch, then the same command again ---------------------------
def _kcv_train(root, extra=()):
    return [sys.executable, "-m", "pipelines.train", "--experiment=resnet18_cifar10", "--model=simple_cnn",
            "--embedded_examples=200", "--epochs=2", "--batch_size=4", "--lr=0.02", "--lr_period=1",
            "--lr_decay=0.5", "--min_accuracy=0", "--deterministic", "--backup_steps=2",
            f"--pipeline_root={root}/runs", f"--serving_model_dir={root}/saved_models/m", *extra]


def _backup_step(path):
    try:
        with open(path) as f:  # the Backup's pointer to its last complete checkpoint
            return json.load(f)["step"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.large
def test_kill_9_mid_epoch_then_the_same_command_resumes_to_identical_weights(tmp_path):
    killed = tmp_path / "killed"
    model_run = killed / "runs" / "Trainer" / "model_run"

    def state():  # the Backup's pointer file in the Trainer's backup-<fingerprint> folder (None before one)
        return next(iter(sorted(model_run.glob("backup-*/backup.json"))), model_run / "no-backup-yet")
    # 200 images -> 180 train / batch 4 = 45 steps per epoch, 90 in all; a backup every 2 steps
    proc = subprocess.Popen(_kcv_train(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=tmp_path)
    try:
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None:
            step = _backup_step(state()) if state().exists() else None
            if step is not None and step >= 6:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and not state().exists():
            proc.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    step = _backup_step(state())
    assert 6 <= step < 90 and step % 45 != 0, step  # mid-epoch, nothing exported yet
    assert not os.path.exists(killed / "runs" / "Trainer" / "model")

    rerun = subprocess.run(_kcv_train(killed), capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming at global step {step} of 90" in rerun.stderr
    reference = subprocess.run(_kcv_train(tmp_path / "reference"), capture_output=True, text=True, env=ENV,
                               cwd=tmp_path, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    def model_dir(out):
        record = [ln.split("run record: ", 1)[1] for ln in out.stdout.splitlines() if ln.startswith("run record: ")][0]
        return json.load(open(record))["artifacts"]["model"]

    resumed = json.load(open(os.path.join(model_dir(rerun), "training_summary.json")))
    uninterrupted = json.load(open(os.path.join(model_dir(reference), "training_summary.json")))
    assert resumed["resumed_from_step"] == step and uninterrupted["resumed_from_step"] == 0
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"]
    a = keras.saving.load_model(os.path.join(model_dir(reference), "model.keras"))
    b = keras.saving.load_model(os.path.join(model_dir(rerun), "model.keras"))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wb, wa)
    assert not state().exists()  # the successful rerun deleted the backup
    assert sorted(d for d in os.listdir(killed / "saved_models" / "m") if not d.startswith(".")) == ["1"]


@pytest.mark.large  # three short RetinaNet trainings (keras-cv's model through the same loop): ~2 minutes
def test_an_interrupted_retinanet_trainer_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from pipelines.tasks import detection

    cfg = build_config("retinanet_bananas", {
        "paths": {"pipeline_root": str(tmp_path / "runs"), "serving_model_dir": str(tmp_path / "saved_models" / "r")},
        "data": {"embedded_examples": 40, "num_shards": 2}, "model": {"image_size": (64, 64)},
        "training": {"epochs": 2, "batch_size": 8, "backup_steps": 2}})
    cfg = cfg.replace(**{"model.kwargs": {"head_width": 8, "head_convs": 1}, "evaluation.min_accuracy": 0.0,
                         "runtime.deterministic": True})
    inputs = run_pipeline(cfg.replace(components=["ExampleGen", "Transform"])).artifacts
    reference = _train(cfg, inputs, "a-reference")
    # 5 steps per epoch: backups after steps 2, 4, 5 (epoch end), 6; interrupted after step 7
    monkeypatch.setattr(detection.Detection, "callbacks", lambda self, *args: [Interrupt(7)])
    with pytest.raises(Killed):
        _train(cfg, inputs, "b-interrupted")
    monkeypatch.undo()
    resumed = _train(cfg, inputs, "c-resumed")
    summary = json.load(open(os.path.join(resumed, "training_summary.json")))
    ref_summary = json.load(open(os.path.join(reference, "training_summary.json")))
    assert summary["resumed_from_step"] == 6
    assert summary["weights_sha256"] == ref_summary["weights_sha256"]
