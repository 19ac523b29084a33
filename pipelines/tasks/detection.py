"""Object detection: images with boxes in, the book's TinySSD, padded detections out.

Examples carry normalised xyxy boxes and 0-based classes; the model normalises its [0, 255] inputs
itself and computes its targets with kcv.detection.multibox_target inside train_step. The
Evaluator runs the exported SavedModel and scores COCO-style mAP (kcv.metrics.detection).
"""
from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.preprocess import resize_for_model
from kcv.data.schema import decode_image, parse_example
from kcv.data.tfrecords import read_records
from kcv.metrics.detection import detection_metrics, from_padded
from kcv.models import get_model
from kcv.serving.detector import export_detector
from pipelines.optimizers import make_optimizer


def preflight(cfg) -> None:
    return None


def _max_objects(examples_dir: str) -> int:
    with open(os.path.join(examples_dir, "counts.json")) as f:
        return max(1, int(json.load(f).get("max_objects", 1)))


def _parsed(cfg, split_dir: str):
    def parse(serialized):
        ex = parse_example(serialized)
        image = resize_for_model(decode_image(ex["image/encoded"], 3), cfg.image_size)
        classes = tf.cast(ex["objects/label"], tf.float32)[:, None]
        labels = tf.concat([classes, ex["objects/bbox"]], axis=1)  # (G, 5) [class, x1, y1, x2, y2]
        return image, labels

    return read_records(split_dir).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def statistics(cfg, split_dir: str) -> dict:
    counts = [int(labels.shape[0]) for _, labels in _parsed(cfg, split_dir)]
    return {"images": len(counts), "objects": int(sum(counts)), "image_size": list(cfg.image_size)}


def dataset(cfg, examples_dir: str, split: str, training: bool, batch_size: int, with_ids: bool = False):
    """Batches of (images float32 (B, H, W, 3) in [0, 255], labels (B, G, 5) padded with class -1 rows)."""
    g = _max_objects(examples_dir)
    ds = _parsed(cfg, os.path.join(examples_dir, f"Split-{split}")).cache()
    if training:
        ds = ds.shuffle(10_000, seed=cfg.seed, reshuffle_each_iteration=True)
    height, width = cfg.image_size
    ds = ds.padded_batch(batch_size, padded_shapes=([height, width, 3], [g, 5]),
                         padding_values=(tf.constant(0, tf.uint8), tf.constant(-1.0)), drop_remainder=training)
    return ds.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(tf.data.AUTOTUNE)


def validation_dataset(cfg, examples_dir: str, batch_size: int):
    return dataset(cfg, examples_dir, "eval", training=False, batch_size=batch_size)


def callbacks(cfg, run_dir: str, examples_dir: str) -> list:
    return []


def build_model(cfg, stats: dict, vocab: list[str]) -> keras.Model:
    height, width = cfg.image_size
    return get_model(cfg.model, num_classes=max(1, len(vocab)), input_shape=(height, width, 3), seed=cfg.seed,
                     **cfg.model_kwargs)


def compile_model(model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
    model.compile(optimizer=make_optimizer(cfg, steps_per_epoch), jit_compile=jit_compile)


def export(model: keras.Model, cfg, stats: dict, vocab: list[str], path: str) -> str:
    return export_detector(model, path, image_size=tuple(cfg.image_size))


def evaluate(saved_model_dir: str, cfg, examples_dir: str, vocab: list[str]) -> dict:
    """mAP of the exported detector (plain TensorFlow, uint8 signature) on Split-eval, in pixels."""
    fn = tf.saved_model.load(saved_model_dir).signatures["serving_images"]
    height, width = cfg.image_size
    scale = np.array([width, height, width, height], np.float32)
    detections, truths = [], []
    for images, labels in dataset(cfg, examples_dir, "eval", training=False, batch_size=32):
        out = fn(images=tf.cast(images, tf.uint8))
        detections += from_padded(out["boxes"].numpy(), out["scores"].numpy(), out["classes"].numpy(),
                                  out["num_detections"].numpy())
        for rows in labels.numpy():
            rows = rows[rows[:, 0] >= 0]
            truths.append((rows[:, 1:] * scale, rows[:, 0].astype(np.int64)))
    if not truths:
        raise ValueError("Split-eval is empty")
    metrics = detection_metrics(detections, truths, num_classes=max(1, len(vocab)))
    metrics = json.loads(json.dumps(metrics, default=lambda v: v.tolist() if hasattr(v, "tolist") else float(v)))
    return {"comparable": True, "primary_metric": "map_50", **metrics, "examples": len(truths)}
