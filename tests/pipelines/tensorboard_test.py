"""TensorBoard events, training curves and the Evaluator's report of tiny GAN, detector and classifier runs.

Tags (kcv/callbacks/tensorboard.py, pipelines/components/evaluator.py): the Trainer's
`tensorboard/train` holds learning_rate/<optimizer>, speed/images_per_second, samples/scatter
(points GAN), detections/validation (detector), eval/confusion_matrix (classifier); the
Evaluator's `tensorboard/` holds evaluation/<metric>, primary/<metric>, per_class_accuracy/<class>,
report/confusion_matrix, report/precision_recall.
"""
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pipelines.config import build_config
from pipelines.runner import run_pipeline
from tests.pipelines.conftest import small_config

NO_PUSH = ("ExampleGen", "Transform", "Trainer", "Evaluator")  # blessing is not what is tested here


def _paths(tmp, name):
    return {"pipeline_root": os.path.join(tmp, "runs"), "serving_model_dir": os.path.join(tmp, "saved", name)}


def _events(folder) -> EventAccumulator:
    acc = EventAccumulator(folder, size_guidance={"tensors": 0})  # TF2 summaries (scalars, images) are tensors
    acc.Reload()
    return acc


def _image_size(acc, tag) -> tuple[int, int]:
    """(height, width) of the last image summary under `tag` ([width, height, PNG...] strings)."""
    value = tf.make_ndarray(acc.Tensors(tag)[-1].tensor_proto)
    return int(value[1]), int(value[0])


def _scalar(acc, tag) -> list[float]:
    return [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]


def _png(path, min_side=150) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert min(width, height) >= min_side and max(width, height) < 4000, (path, image.size)
    return height, width


def _run(cfg):
    record = run_pipeline(cfg)
    run_dir, evaluation = record.artifacts["model_run"], record.artifacts["evaluation"]
    return record, _events(os.path.join(run_dir, "tensorboard", "train")), run_dir, evaluation


def test_points_gan_scatter_both_learning_rates_and_curves(tmp_path):
    cfg = build_config("gan_gaussian", {"paths": _paths(str(tmp_path), "gan"), "components": NO_PUSH,
                                        "data": {"embedded_examples": 200}, "training": {"epochs": 2}})
    _, acc, run_dir, evaluation = _run(cfg)
    assert [e.step for e in acc.Tensors("samples/scatter")] == [0, 1]
    assert min(_image_size(acc, "samples/scatter")) >= 200
    # The preset's cosine decay over 160 epochs (D 0.05 -> 0.0015, G 0.002 -> 6e-5), read after
    # epochs 1 and 2: lr(e) = final + (base - final) (1 + cos(pi e / 160)) / 2, D's 25x G's.
    cosine = [(1 + math.cos(math.pi * e / 160)) / 2 for e in (1, 2)]
    assert _scalar(acc, "learning_rate/d_optimizer") == pytest.approx([0.0015 + 0.0485 * c for c in cosine],
                                                                       rel=1e-5)
    assert _scalar(acc, "learning_rate/g_optimizer") == pytest.approx([6e-5 + 0.00194 * c for c in cosine],
                                                                       rel=1e-5)
    assert all(v > 0 for v in _scalar(acc, "speed/images_per_second"))
    _png(os.path.join(run_dir, "training_curves.png"))
    report = _events(os.path.join(evaluation, "tensorboard"))
    assert _scalar(report, "primary/moments_score") == _scalar(report, "evaluation/moments_score")


@pytest.mark.large  # an end-to-end run (~1 minute or more on 2 cores)
def test_detector_scenes_and_precision_recall(tmp_path):
    cfg = build_config("tiny_ssd_bananas", {
        "paths": _paths(str(tmp_path), "ssd"), "components": NO_PUSH,
        "data": {"embedded_examples": 32}, "training": {"epochs": 1, "batch_size": 16},
        "model": {"image_size": (64, 64)}}).replace(**{"evaluation.min_accuracy": 0.0})
    _, acc, run_dir, evaluation = _run(cfg)
    assert len(acc.Tensors("detections/validation")) == 1
    pictures = tf.make_ndarray(acc.Tensors("detections/validation")[0].tensor_proto)
    assert len(pictures) - 2 == 4  # the four fixed eval scenes
    assert {"learning_rate/optimizer", "speed/images_per_second"} <= set(acc.Tags()["tensors"])
    _png(os.path.join(run_dir, "training_curves.png"))
    _png(os.path.join(evaluation, "precision_recall.png"))
    metrics = json.load(open(os.path.join(evaluation, "metrics.json")))
    curves = metrics["precision_recall"]
    assert len(curves["recall"]) == 101 and list(curves["precision"]) == ["banana"]
    # the curve is what AP@0.5 averages
    assert np.mean(curves["precision"]["banana"]) == pytest.approx(metrics["map_50"])
    report = _events(os.path.join(evaluation, "tensorboard"))
    assert _scalar(report, "primary/map_50") == pytest.approx([metrics["map_50"]])
    assert min(_image_size(report, "report/precision_recall")) > 200


def test_classifier_confusion_matrix_curves_and_report(tmp_path):
    cfg = small_config(str(tmp_path), **{"data.embedded_examples": 100, "components": NO_PUSH})
    record, acc, run_dir, evaluation = _run(cfg)
    assert min(_image_size(acc, "eval/confusion_matrix")) > 300
    assert _scalar(acc, "learning_rate/optimizer") == pytest.approx([cfg.training.lr])
    assert len(_scalar(acc, "speed/images_per_second")) == 1
    assert _png(os.path.join(run_dir, "training_curves.png"))
    height, width = _png(os.path.join(evaluation, "confusion_matrix.png"), min_side=400)
    metrics = json.load(open(os.path.join(evaluation, "metrics.json")))
    matrix = np.array(metrics["confusion_matrix"])
    k = len(metrics["per_class_accuracy"])
    assert matrix.shape == (k, k) and matrix.sum() == metrics["examples"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["accuracy"])
    report = _events(os.path.join(evaluation, "tensorboard"))
    tags = set(report.Tags()["tensors"])
    assert {"primary/accuracy", "evaluation/accuracy", "evaluation/loss", "report/confusion_matrix"} <= tags
    assert sum(t.startswith("per_class_accuracy/") for t in tags) == sum(
        v is not None for v in metrics["per_class_accuracy"].values())
    assert _image_size(report, "report/confusion_matrix") == (height, width)
