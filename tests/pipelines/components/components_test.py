"""The five components: artifact layout, blessing rules, atomic versioned pushes, re-runs."""
import dataclasses
import json
import os

import pytest

from pipelines import artifacts
from pipelines.config import build_config
from pipelines.components import evaluator, pusher


def test_artifact_layout(pipeline_run):
    cfg, results = pipeline_run
    root = cfg.pipeline_root
    examples = results["ExampleGen"]
    assert examples == os.path.join(root, "ExampleGen", "examples", "20260101T000000000000Z")
    counts = json.load(open(os.path.join(examples, "counts.json")))
    # 200 images, 20 per class -> floor(20 * 0.1) = 2 per class held out
    assert counts["train"] == 180 and counts["eval"] == 20
    assert set(counts["eval_per_class"].values()) == {2}
    assert sorted(os.listdir(os.path.join(examples, "Split-train"))) == [
        "data-00000-of-00002.tfrecord.gz", "data-00001-of-00002.tfrecord.gz"]
    stats = json.load(open(os.path.join(results["Transform"], "stats.json")))
    assert len(stats["mean"]) == 3 and all(0 < m < 255 for m in stats["mean"]) and all(s > 0 for s in stats["std"])
    model = results["Trainer"]
    assert os.path.isfile(os.path.join(model, "Format-Serving", "saved_model.pb"))
    assert os.path.isfile(os.path.join(model, "model.keras"))
    run_dir = os.path.join(root, "Trainer", "model_run", "20260101T000000000000Z")
    assert os.path.isfile(os.path.join(run_dir, "training_log.csv"))
    assert os.listdir(os.path.join(run_dir, "tensorboard"))
    metrics = json.load(open(os.path.join(root, "Evaluator", "evaluation", "20260101T000000000000Z", "metrics.json")))
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["examples"] == 20
    assert os.path.exists(os.path.join(results["Evaluator"], "BLESSED"))
    assert results["Pusher"] == os.path.join(cfg.serving_model_dir, "1")
    assert os.path.isfile(os.path.join(cfg.serving_model_dir, "1", "saved_model.pb"))
    config = open(os.path.join(os.path.dirname(cfg.serving_model_dir), "models.config")).read()
    assert 'name: "resnet18_cifar10"' in config and 'base_path: "/models/resnet18_cifar10"' in config
    # no temporary folders left anywhere
    for dirpath, dirnames, _ in os.walk(root):
        assert not [d for d in dirnames if d.startswith(".tmp")], dirpath


def test_decide_rules():
    m = {"primary_metric": "accuracy", "accuracy": 0.5}
    assert evaluator.decide(m, None, 0.4, 0.02)[0]
    blessed, reason = evaluator.decide(m, None, 0.6, 0.02)
    assert not blessed and "below the threshold 0.6000 (--min_accuracy)" in reason
    assert evaluator.decide(m, {"comparable": True, "accuracy": 0.51}, 0.4, 0.02)[0]
    blessed, reason = evaluator.decide(m, {"comparable": True, "accuracy": 0.6}, 0.4, 0.02)
    assert not blessed and "--max_regression" in reason
    assert evaluator.decide(m, {"comparable": False}, 0.4, 0.02)[0]  # different vocabulary: not compared


def test_rerun_evaluator_and_pusher_on_latest_artifacts(pipeline_run):
    cfg, _ = pipeline_run
    evaluator.run(cfg, "20260101T000000000001Z")
    metrics = json.load(open(os.path.join(cfg.pipeline_root, "Evaluator", "evaluation", "20260101T000000000001Z",
                                          "metrics.json")))
    # the same model against itself as the pushed baseline: equal accuracy, blessed
    assert metrics["baseline"]["accuracy"] == metrics["accuracy"] and metrics["blessed"]
    assert pusher.run(cfg, "20260101T000000000001Z") == os.path.join(cfg.serving_model_dir, "2")


def test_not_blessed_pushes_nothing(pipeline_run):
    cfg, _ = pipeline_run
    strict = dataclasses.replace(cfg, min_accuracy=1.01)
    before = sorted(os.listdir(cfg.serving_model_dir))
    evaluator.run(strict, "20260101T000000000002Z")
    with pytest.raises(artifacts.PipelineError, match="model not blessed, nothing pushed: accuracy .* below the threshold"):
        pusher.run(strict, "20260101T000000000002Z")
    assert sorted(os.listdir(cfg.serving_model_dir)) == before


def test_missing_upstream_artifact_is_a_clear_error(tmp_path):
    from pipelines.components import trainer

    cfg = build_config("resnet18_cifar10", pipeline_root=str(tmp_path))
    with pytest.raises(artifacts.PipelineError, match="no ExampleGen artifact .* run ExampleGen first"):
        trainer.run(cfg, "x")


def test_publish_removes_partial_output_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with artifacts.Publish(str(tmp_path), artifacts.EXAMPLES, "r1") as out:
            open(os.path.join(out, "half"), "w").close()
            raise RuntimeError("killed")
    assert os.listdir(os.path.join(tmp_path, "ExampleGen", "examples")) == []
