"""A small pipeline run shared by the pipeline tests: simple_cnn on 200 embedded images, 1 epoch."""
import dataclasses
import os

import pytest

from pipelines.config import build_config


def small_config(tmp, **overrides):
    cfg = build_config("resnet18_cifar10", pipeline_root=os.path.join(tmp, "runs"),
                       serving_model_dir=os.path.join(tmp, "saved_models", "resnet18_cifar10"),
                       embedded_examples=200, epochs=1, batch_size=16, num_shards=2)
    fields = {"model": "simple_cnn", "model_kwargs": {"width": 8}, "min_accuracy": 0.0, **overrides}
    return dataclasses.replace(cfg, **fields)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """Runs all five components once; returns (cfg, run_id, {component: result path})."""
    from pipelines.components import evaluator, example_gen, pusher, trainer, transform

    tmp = str(tmp_path_factory.mktemp("pipeline"))
    cfg = small_config(tmp)
    results = {}
    for name, module in (("ExampleGen", example_gen), ("Transform", transform), ("Trainer", trainer),
                         ("Evaluator", evaluator), ("Pusher", pusher)):
        results[name] = module.run(cfg, "20260101T000000000000Z")
    return cfg, results
