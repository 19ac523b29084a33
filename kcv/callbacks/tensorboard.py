"""TensorBoard summaries Keras' own callback does not write: learning rates, speed, pictures.

Each callback writes into `<log_dir>/train` (the run Keras' TensorBoard callback calls "train"),
one event per epoch at step = epoch (0-based, as Keras' `epoch_*` scalars). Tags:

  learning_rate/<attribute>   every optimizer the model holds (`optimizer`; a GAN's d_optimizer, g_optimizer)
  speed/images_per_second     train steps of the epoch * global batch / their seconds
  samples/grid                a GAN's fixed-noise sample grid      (SampleGrid, log_dir=...)
  samples/scatter             real-vs-generated points             (PointScatter, log_dir=...)
  detections/validation       fixed eval scenes with predicted (and true) boxes
  eval/confusion_matrix       a classifier's confusion matrix on the eval split

None of them draws random numbers or changes the model: training is bit-identical with or without.
"""
from __future__ import annotations

import os
import time
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf


def summary_writer(log_dir: str):
    """The file writer of `<log_dir>/train`."""
    return tf.summary.create_file_writer(os.path.join(log_dir, "train"))


def write_image(writer, tag: str, images: np.ndarray, step: int) -> None:
    """uint8 images (H, W, C) or (n, H, W, C) as one image summary (all n shown)."""
    images = np.asarray(images, np.uint8)
    if images.ndim == 3:
        images = images[None]
    with writer.as_default():
        tf.summary.image(tag, images, step=step, max_outputs=len(images))
    writer.flush()


class SummaryCallback(keras.callbacks.Callback):
    """A callback owning one lazily opened writer of `<log_dir>/train` (None: no summaries), closed at train end."""

    def __init__(self, log_dir: str | None) -> None:
        super().__init__()
        self.log_dir = log_dir
        self._writer = None

    def writer(self):
        if self._writer is None:
            self._writer = summary_writer(self.log_dir)
        return self._writer

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """The model's optimizers by attribute name, each object once: its own names first (a GAN's
    d_optimizer, g_optimizer), then the compiled `optimizer` if it is none of those."""
    named: dict[str, Any] = {}
    candidates = [(n, v) for n, v in sorted(vars(model).items()) if n != "optimizer"]
    for name, value in [*candidates, ("optimizer", getattr(model, "optimizer", None))]:
        if isinstance(value, keras.optimizers.Optimizer) and all(value is not v for v in named.values()):
            named[name] = value
    return named


class TrainingScalars(SummaryCallback):
    """Per-epoch `learning_rate/<optimizer>` and `speed/images_per_second` scalars.

    The epoch is timed from its start to its last train step (validation excluded); a resumed
    epoch counts only the steps it ran.
    """

    def __init__(self, log_dir: str, global_batch: int) -> None:
        super().__init__(log_dir)
        self.global_batch = int(global_batch)
        self._start = self._end = 0.0
        self._steps = 0
        self.logged: list[dict[str, float]] = []  # what was written, per epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = self._end = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps += 1
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        values = {f"learning_rate/{name}": float(np.asarray(keras.ops.convert_to_numpy(opt.learning_rate)))
                  for name, opt in optimizers(self.model).items()}
        seconds = self._end - self._start
        if self._steps and seconds > 0:
            values["speed/images_per_second"] = self._steps * self.global_batch / seconds
        with self.writer().as_default():
            for tag, value in values.items():
                tf.summary.scalar(tag, value, step=epoch)
        self.writer().flush()
        self.logged.append(values)


class DetectionPictures(SummaryCallback):
    """Fixed eval scenes through the model's predict path (`model.detect`), boxes drawn, each epoch.

    Args:
        log_dir: the TensorBoard folder (summaries go to `<log_dir>/train`, tag detections/validation).
        images: (n, H, W, 3) uint8 scenes at the model's input size.
        truths: n arrays (m, 4) of normalised xyxy true boxes (drawn black), or None.
        class_names: names of the classes, for the box labels.
        max_boxes: most predicted boxes drawn per scene (highest scores first).
    """

    def __init__(self, log_dir: str, images: Any, truths: Sequence[Any] | None = None,
                 class_names: Sequence[str] = (), max_boxes: int = 3, min_score: float = 0.1) -> None:
        super().__init__(log_dir)
        self.images = np.asarray(images, np.uint8)
        self.truths = truths
        self.class_names, self.max_boxes, self.min_score = list(class_names), max_boxes, min_score
        self.last: np.ndarray | None = None  # the last pictures written (n, h, w, 3)

    def _scene(self, i: int, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
        from kcv.viz.boxes import BoxPanel, box_figure, to_pixels
        from kcv.viz.figures import figure_to_array

        image = self.images[i]
        keep = (classes >= 0) & (scores >= self.min_score)
        boxes, scores, classes = boxes[keep][:self.max_boxes], scores[keep][:self.max_boxes], classes[keep]
        labels = [f"{self._name(int(c))} {s:.2f}" for c, s in zip(classes, scores)]
        extra = ()
        if self.truths is not None:
            extra = (BoxPanel(to_pixels(np.asarray(self.truths[i]).reshape(-1, 4), image.shape), colors=["k"]),)
        panel = BoxPanel(to_pixels(boxes, image.shape), labels, colors=["w"], extra=extra)
        return figure_to_array(box_figure(image, [panel], panel_width=3.0, fit_boxes=False))

    def _name(self, c: int) -> str:
        return self.class_names[c] if c < len(self.class_names) else str(c)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        out = self.model.detect(self.images)  # normalised boxes, sorted by score, padding class -1
        boxes, scores, classes = (keras.ops.convert_to_numpy(out[k]) for k in ("boxes", "scores", "classes"))
        pictures = [self._scene(i, boxes[i], scores[i], classes[i]) for i in range(len(self.images))]
        height, width = min(p.shape[0] for p in pictures), min(p.shape[1] for p in pictures)
        self.last = np.stack([p[:height, :width] for p in pictures])
        write_image(self.writer(), "detections/validation", self.last, epoch)


class ConfusionMatrixSummary(SummaryCallback):
    """A classifier's confusion matrix on a labelled dataset, drawn and written each epoch.

    Args:
        log_dir: the TensorBoard folder (tag eval/confusion_matrix).
        dataset: finite batches (images, labels (B,)) the model takes, e.g. the eval split.
        class_names: the vocabulary, for the axes.
    """

    def __init__(self, log_dir: str, dataset: tf.data.Dataset, class_names: Sequence[str]) -> None:
        super().__init__(log_dir)
        self.dataset, self.class_names = dataset, list(class_names)
        self.matrix: np.ndarray | None = None  # the last epoch's counts (K, K)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from kcv.viz.figures import figure_to_array
        from kcv.viz.reports import confusion_figure, confusion_matrix

        truth, predicted = [], []
        for images, labels in self.dataset:
            logits = self.model(images, training=False)
            predicted.append(np.argmax(keras.ops.convert_to_numpy(logits), axis=-1))
            truth.append(np.asarray(labels).reshape(-1))
        if not truth:
            return
        k = len(self.class_names)
        self.matrix = confusion_matrix(np.concatenate(truth), np.concatenate(predicted), k)
        picture = figure_to_array(confusion_figure(self.matrix, self.class_names, title=f"epoch {epoch + 1}"))
        write_image(self.writer(), "eval/confusion_matrix", picture, epoch)
