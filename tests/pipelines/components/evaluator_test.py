"""Evaluator: blessing rules by hand, metrics recomputed from the SavedModel, the pushed baseline."""
import json
import os

import numpy as np
import tensorflow as tf

from kcv.data.input import classification_dataset
from pipelines.components import evaluator
from pipelines.runner import run_pipeline


def test_decide_rules():
    m = {"primary_metric": "accuracy", "accuracy": 0.5}
    assert evaluator.decide(m, None, 0.4, 0.02)[0]
    blessed, reason = evaluator.decide(m, None, 0.6, 0.02)
    assert not blessed and reason == "accuracy 0.5000 is below the threshold 0.6000 (--min_accuracy)"
    assert evaluator.decide(m, {"comparable": True, "accuracy": 0.51}, 0.4, 0.02)[0]  # 0.5 >= 0.51 - 0.02
    blessed, reason = evaluator.decide(m, {"comparable": True, "accuracy": 0.53}, 0.4, 0.02)
    assert not blessed and "--max_regression" in reason  # 0.5 < 0.53 - 0.02
    assert evaluator.decide(m, {"comparable": False}, 0.4, 0.02)[0]  # different vocabulary: not compared
    assert not evaluator.decide({"primary_metric": "map_50", "map_50": float("nan")}, None, 0.0, 1.0)[0]


def test_metrics_are_the_saved_models_accuracy_on_the_eval_split(pipeline_run):
    cfg, record = pipeline_run
    metrics = json.load(open(os.path.join(record.artifacts["evaluation"], "metrics.json")))
    assert metrics["model"] == record.artifacts["model"] and metrics["examples"] == 20
    # recompute by hand through the bytes signature a client would use
    fn = tf.saved_model.load(os.path.join(record.artifacts["model"], "Format-Serving")).signatures["serving_images"]
    ds = classification_dataset(os.path.join(record.artifacts["examples"], "Split-eval"), batch_size=64,
                                training=False, image_size=(32, 32))
    correct = sum(int((fn(images=tf.cast(x, tf.uint8))["classes"].numpy() == y.numpy()).sum()) for x, y in ds)
    assert metrics["accuracy"] == correct / 20
    per_class = [v for v in metrics["per_class_accuracy"].values()]
    assert np.mean(per_class) == metrics["accuracy"]  # 2 eval images per class: the mean of the classes
    assert os.path.exists(os.path.join(record.artifacts["blessing"], "BLESSED"))


def test_continuing_a_run_scores_its_model_against_the_pushed_one(pipeline_copy):
    cfg, parent = pipeline_copy
    record = run_pipeline(cfg.replace(components=["Evaluator"]), continue_run=parent)
    metrics = json.load(open(os.path.join(record.artifacts["evaluation"], "metrics.json")))
    # the same model against itself as the pushed baseline: equal accuracy, blessed
    assert metrics["baseline"]["accuracy"] == metrics["accuracy"] and metrics["blessed"]
    c = record.data["components"]["Evaluator"]
    assert record.data["parent_run"] == parent
    assert c["inputs"]["baseline"] == os.path.join(cfg.paths.serving_model_dir, "1")
    assert c["inputs"]["model"] == json.load(open(os.path.join(os.path.dirname(cfg.paths.pipeline_root), "runs",
                                                               "runs", f"{parent}.json")))["artifacts"]["model"]
