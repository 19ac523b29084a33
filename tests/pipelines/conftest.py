"""A small pipeline run shared by the pipeline tests: simple_cnn on 200 embedded images, 1 epoch.

The session's run is read-only: a test that runs more components on it takes `pipeline_copy`,
which continues the shared run on a private pipeline root and serving folder.
"""
import os
import shutil

import keras
import pytest

from pipelines.config import build_config

RUN_ID = "20260101T000000000000Z-000000"


def small_config(tmp, **dotted):
    """resnet18_cifar10's recipe on simple_cnn (width 8), 200 embedded images, 1 epoch, no accuracy bar."""
    cfg = build_config("resnet18_cifar10", {
        "paths": {"pipeline_root": os.path.join(tmp, "runs"),
                  "serving_model_dir": os.path.join(tmp, "saved_models", "resnet18_cifar10")},
        "data": {"embedded_examples": 200, "num_shards": 2}, "training": {"epochs": 1, "batch_size": 16},
        "model": {"name": "simple_cnn"}})
    return cfg.replace(**{"model.kwargs": {"width": 8}, "evaluation.min_accuracy": 0.0, **dotted})


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """Runs all five components once; returns (cfg, run record)."""
    from pipelines.runner import run_pipeline

    cfg = small_config(str(tmp_path_factory.mktemp("pipeline")))
    return cfg, run_pipeline(cfg, run_id=RUN_ID)


@pytest.fixture
def pipeline_copy(pipeline_run, tmp_path):
    """(cfg, parent run id) on a private root holding the shared run's record and pushed versions."""
    cfg, record = pipeline_run
    root, serving = str(tmp_path / "runs"), str(tmp_path / "saved_models" / "resnet18_cifar10")
    shutil.copytree(os.path.join(cfg.paths.pipeline_root, "runs"), os.path.join(root, "runs"))
    shutil.copytree(cfg.paths.serving_model_dir, serving)
    return cfg.replace(**{"paths.pipeline_root": root, "paths.serving_model_dir": serving}), record.run_id


class Killed(Exception):
    """What Interrupt raises: a training stopped mid-run, as a kill would stop it."""


class Interrupt(keras.callbacks.Callback):
    """Raises Killed after step `at` (counted from the run's start), as a kill would stop it."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            raise Killed(f"after step {self.at}")
