"""Trainer: artifacts, the printed weights digest, step planning errors."""
import json
import os

import keras
import pytest

from pipelines import loop
from pipelines.artifacts import PipelineError
from pipelines.components import trainer
from tests.pipelines.conftest import small_config


def test_model_artifact_and_logs(pipeline_run):
    cfg, record = pipeline_run
    model, run_dir = record.artifacts["model"], record.artifacts["model_run"]
    assert run_dir == os.path.join(cfg.paths.pipeline_root, "Trainer", "model_run", record.run_id)
    assert os.path.isfile(os.path.join(model, "Format-Serving", "saved_model.pb"))
    lines = open(os.path.join(run_dir, "training_log.csv")).read().splitlines()
    assert lines[0].split(",")[:2] == ["epoch", "accuracy"] and len(lines) == 2  # header + 1 epoch
    assert os.listdir(os.path.join(run_dir, "tensorboard"))
    assert open(os.path.join(run_dir, "training_curves.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    summary = json.load(open(os.path.join(model, "training_summary.json")))
    assert summary["steps_per_epoch"] == 180 // 16 and summary["examples"] == record.artifacts["examples"]
    # where the Trainer's time went, per phase: 1 epoch of 11 steps, the parts summing to the epoch
    seconds = summary["phases"][0]["seconds"]
    assert seconds["steps"] == 11 and len(seconds["epochs"]) == 1 and seconds["step"] > 0
    assert sum(seconds[k] for k in ("input", "step", "validation", "other")) == pytest.approx(seconds["epochs"][0],
                                                                                            abs=0.01)
    # the printed digest is the exported model's: model.keras loads to the same weights
    assert loop.weights_digest(keras.saving.load_model(os.path.join(model, "model.keras"))) == summary["weights_sha256"]
    assert record.data["components"]["Trainer"]["weights_sha256"] == summary["weights_sha256"]
    # one checkpoint format: no second copy of the weights beside the backup, and the backup is gone
    assert not [d for d in os.listdir(os.path.dirname(run_dir)) if d.startswith("backup")]
    assert not os.path.exists(os.path.join(run_dir, "checkpoints"))


@pytest.mark.parametrize("batch, replicas, cap, message", [
    (16, 3, 0, "--batch_size=16 is not divisible by 3 replicas"),
    (200, 1, 0, "--batch_size=200 is larger than the 180 training examples"),
])
def test_steps_per_epoch_errors(tmp_path, batch, replicas, cap, message):
    cfg = small_config(str(tmp_path), **{"training.batch_size": batch})
    with pytest.raises(PipelineError, match=message):
        trainer.steps_per_epoch(cfg, 180, replicas)


def test_steps_per_epoch_drops_the_last_partial_batch_and_honours_the_cap(tmp_path):
    cfg = small_config(str(tmp_path))
    assert trainer.steps_per_epoch(cfg, 180, 1) == 11  # 180 // 16
    assert trainer.steps_per_epoch(cfg.replace(**{"training.steps_per_epoch": 4}), 180, 2) == 4


def test_training_curves_are_written_from_the_history(tmp_path):
    path = trainer.write_training_curves({"loss": [1.0, 0.5], "accuracy": [0.4, 0.7]}, str(tmp_path))
    assert path == str(tmp_path / "training_curves.png") and os.path.getsize(path) > 1000
    assert trainer.write_training_curves({"loss": []}, str(tmp_path / "none")) is None  # nothing trained


def test_phases_one_by_default_two_with_fine_tune_epochs():
    from pipelines.config import build_config

    (one,) = trainer.plan_phases(build_config("resnet18_cifar10"))
    assert one.index == 1 and one.cfg == build_config("resnet18_cifar10")
    cfg = build_config("dog_breeds", {"model": {"weights": "none"}})
    head, top = trainer.plan_phases(cfg)
    assert (head.cfg.model.trainable_layers, head.cfg.training.epochs, head.cfg.training.lr) == (0, 10, 3.2e-3)
    assert top.cfg.model.trainable_layers == 7 and top.cfg.training.epochs == 4
    assert top.cfg.training.lr == pytest.approx(3.2e-4)
    (only,) = trainer.plan_phases(build_config("dog_breeds", {"model": {"weights": "none"},
                                                              "training": {"fine_tune_epochs": 0}}))
    assert only.cfg.model.trainable_layers == 7  # one phase: the top layers train from the start
