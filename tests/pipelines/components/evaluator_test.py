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


def test_scalar_metrics_and_report_figures():
    metrics = {"primary_metric": "accuracy", "accuracy": 0.75, "loss": 0.5, "examples": 4, "blessed": True,
               "comparable": True, "per_class_accuracy": {"cat": 0.5, "dog": 1.0, "owl": None},
               "confusion_matrix": [[1, 1, 0], [0, 2, 0], [0, 0, 0]]}
    assert evaluator.scalar_metrics(metrics) == {
        "evaluation/accuracy": 0.75, "evaluation/loss": 0.5, "evaluation/examples": 4.0, "primary/accuracy": 0.75,
        "per_class_accuracy/cat": 0.5, "per_class_accuracy/dog": 1.0}  # booleans and None are no scalars
    figures = evaluator.report_figures(metrics)
    assert list(figures) == ["confusion_matrix.png"]
    assert [t.get_text() for t in figures["confusion_matrix.png"].axes[0].get_xticklabels()] == ["cat", "dog", "owl"]
    pr = {"iou_threshold": 0.5, "recall": [], "precision": {"banana": [1.0] * 101}}
    assert list(evaluator.report_figures({"precision_recall": pr})) == ["precision_recall.png"]
