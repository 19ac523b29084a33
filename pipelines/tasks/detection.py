"""Object detection: images with boxes in, a detector (the book's TinySSD or keras-cv's RetinaNet), padded detections out.

Examples carry normalised xyxy boxes and 0-based classes; the input pipeline hands them on as
keras-cv bounding-box dicts converted to the model's `bounding_box_format` (optionally with
keras-cv's box-aware augmentation, `--augment=boxes`). Each model trains with its own train_step
(TinySSD: the book's multibox_target + loss; RetinaNet: keras-cv's label encoder + focal loss).
The export puts decoding and the NMS chosen by `--nms` inside the graph (model.detect); the
Evaluator runs the exported SavedModel and scores COCO-style mAP (kcv.metrics.detection).
"""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.box_augment import BOX_FORMAT
from kcv.data.input import detection_dataset, object_counts
from kcv.metrics.detection import RECALL_LEVELS, detection_metrics, from_padded
from kcv.models import get_model
from kcv.ops.boxes import bounding_boxes_to_rows
from kcv.serving.detector import IMAGES_SIGNATURE, export_detector
from kcv.viz.reports import precision_recall_curves
from pipelines.artifacts import PipelineError
from pipelines.optimizers import make_optimizer
from pipelines.tasks import register_task
from pipelines.tasks.base import Task, input_size, jsonable, read_json, signature_image_size, split_dir


DETECTION_SCENES = 4  # eval images drawn with their detections in TensorBoard each epoch


def _max_objects(examples_dir: str) -> int:
    """The most objects in one image of either split (ExampleGen's counts.json): the label padding."""
    return max(1, int(read_json(os.path.join(examples_dir, "counts.json")).get("max_objects", 1)))


def _dataset(cfg, examples_dir: str, split: str, image_size, training: bool, batch_size: int,
             box_format: str = BOX_FORMAT) -> tf.data.Dataset:
    """(images, keras-cv bounding boxes) batches; boxes converted to the model's `box_format`
    (keras-cv's names: TinySSD takes rel_xyxy, keras-cv's RetinaNet pixel xyxy), padding kept -1."""
    ds = detection_dataset(split_dir(examples_dir, split), batch_size=batch_size, training=training,
                           image_size=image_size, max_objects=_max_objects(examples_dir), seed=cfg.runtime.seed,
                           augment=cfg.data.augment if training else "none")
    if box_format == BOX_FORMAT:
        return ds
    from keras_cv import bounding_box

    def convert(images, boxes):
        valid = boxes["classes"] >= 0
        moved = bounding_box.convert_format(boxes["boxes"], source=BOX_FORMAT, target=box_format, images=images)
        return images, {"boxes": tf.where(valid[..., None], moved, -1.0), "classes": boxes["classes"]}

    return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def _box_format(model: keras.Model) -> str:
    return getattr(model, "bounding_box_format", BOX_FORMAT)


@register_task
class Detection(Task):
    name = "detection"
    primary_metric = "map_50"
    sources = ("bananas",)
    augmentations = ("none", "boxes")

    def statistics(self, cfg, examples_dir: str) -> dict:
        counts = object_counts(split_dir(examples_dir, "train"))
        return {"images": len(counts), "objects": int(sum(counts)), "image_size": list(cfg.model.image_size)}

    def build_model(self, cfg, stats: dict, vocabulary: list[str]) -> keras.Model:
        m = cfg.model
        return get_model(m.name, num_classes=max(1, len(vocabulary)), input_shape=(*m.image_size, m.channels),
                         seed=cfg.runtime.seed, **m.builder_kwargs(cfg.data.download))

    def compile_model(self, model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
        model.compile(optimizer=make_optimizer(cfg.training, steps_per_epoch), jit_compile=jit_compile)

    def train_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset:
        return _dataset(cfg, examples_dir, "train", input_size(model), True, cfg.training.batch_size,
                        _box_format(model))

    def validation_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset:
        return _dataset(cfg, examples_dir, "eval", input_size(model), False, cfg.training.batch_size,
                        _box_format(model))

    def callbacks(self, cfg, run_dir: str, examples_dir: str) -> list:
        """The first DETECTION_SCENES eval images with predicted (white) and true (black) boxes in
        TensorBoard each epoch (tag detections/validation)."""
        from kcv.callbacks.tensorboard import DetectionPictures
        from pipelines.artifacts import read_vocabulary

        data = _dataset(cfg, examples_dir, "eval", tuple(cfg.model.image_size), False, DETECTION_SCENES)
        images, labels = next(iter(data.take(1)), (None, None))
        if images is None:
            return []
        truths = [rows[rows[:, 0] >= 0][:, 1:] for rows in bounding_boxes_to_rows(labels).numpy()]
        return [DetectionPictures(os.path.join(run_dir, "tensorboard"), images.numpy().astype(np.uint8), truths,
                                  read_vocabulary(examples_dir))]

    def export(self, model: keras.Model, cfg, stats: dict, vocabulary: list[str], path: str) -> str:
        return export_detector(model, path, image_size=input_size(model), max_image_pixels=cfg.data.max_image_pixels,
                               nms=cfg.model.nms)

    def evaluate(self, saved_model_dir: str, cfg, examples_dir: str, vocabulary: list[str],
                 progress=None) -> dict:
        """mAP of the exported detector (plain TensorFlow, uint8 signature) on Split-eval, in pixels,
        and per class the precision at the 101 recall levels of AP@0.5 (`precision_recall`)."""
        fn = tf.saved_model.load(saved_model_dir).signatures[IMAGES_SIGNATURE]
        height, width = signature_image_size(fn)
        scale = np.array([width, height, width, height], np.float32)
        detections, truths = [], []
        for images, labels in _dataset(cfg, examples_dir, "eval", (height, width), False, 32):
            out = fn(images=tf.cast(images, tf.uint8))
            detections += from_padded(out["boxes"].numpy(), out["scores"].numpy(), out["classes"].numpy(),
                                      out["num_detections"].numpy())
            for rows in bounding_boxes_to_rows(labels).numpy():
                rows = rows[rows[:, 0] >= 0]
                truths.append((rows[:, 1:] * scale, rows[:, 0].astype(np.int64)))
            if progress is not None:
                progress.update(int(images.shape[0]))
        if not truths:
            raise PipelineError("Split-eval is empty")
        num_classes = max(1, len(vocabulary))
        metrics = jsonable(detection_metrics(detections, truths, num_classes=num_classes))
        curves = precision_recall_curves(detections, truths, num_classes, iou_threshold=0.5)
        names = list(vocabulary) or ["object"]
        precision_recall = {"iou_threshold": 0.5, "recall": RECALL_LEVELS.tolist(),
                            "precision": {names[k]: None if c is None else c.tolist() for k, c in curves.items()}}
        return {"comparable": True, "primary_metric": self.primary_metric, **metrics, "examples": len(truths),
                "precision_recall": precision_recall}
