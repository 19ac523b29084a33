"""Image classification: labelled images in, softmax over the vocabulary out."""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.input import classification_dataset
from kcv.data.statistics import image_statistics, patch_covariance
from kcv.losses.classification import classification_loss
from kcv.models.classifier import image_classifier
from kcv.serving.classifier import IMAGES_SIGNATURE, export_classifier
from pipelines.artifacts import PipelineError
from pipelines.optimizers import make_optimizer
from pipelines.tasks import register_task
from pipelines.tasks.base import Task, input_size, signature_image_size, split_dir


def _dataset(cfg, examples_dir: str, split: str, image_size, channels: int, training: bool, batch_size: int):
    data = cfg.data
    return classification_dataset(split_dir(examples_dir, split), batch_size=batch_size, training=training,
                                  image_size=image_size, channels=channels,
                                  augment=data.augment if training else "none", resize_mode=data.resize_mode,
                                  seed=cfg.runtime.seed)


@register_task
class Classification(Task):
    name = "classification"
    primary_metric = "accuracy"
    sources = ("kaggle_cifar10", "kaggle_dog", "class_folders", "tfds:*")
    augmentations = ("none", "flip", "cifar", "translate", "imagenet")

    def check_vocabulary(self, vocabulary: list[str]) -> None:
        if len(vocabulary) < 2:
            raise PipelineError(f"classification needs at least 2 classes, found {len(vocabulary)}")

    def preflight(self, cfg) -> None:
        """Pretrained weights must be there (or downloadable) before any data is read."""
        model = cfg.model
        if model.backbone is None or "Trainer" not in cfg.components:
            return
        from kcv.models.pretrained import PretrainedWeightsError, resolve_weights

        try:
            resolve_weights(model.backbone, model.weights, include_top=bool(model.keep_imagenet_top),
                            allow_download=cfg.data.download)
        except PretrainedWeightsError as err:
            raise PipelineError(str(err)) from None

    def statistics(self, cfg, examples_dir: str) -> dict:
        """Per-channel mean and std; with a whitening stem (model kwargs whiten=True, fast_cifar) also
        `patch_covariance`, the 2x2 patch second moments of the normalised training images."""
        train = split_dir(examples_dir, "train")
        m = cfg.model
        stats = image_statistics(train, image_size=m.image_size, channels=m.channels, resize_mode=cfg.data.resize_mode)
        if m.kwargs.get("whiten"):
            stats["patch_covariance"] = patch_covariance(train, image_size=m.image_size, channels=m.channels,
                                                         mean=stats["mean"], std=stats["std"],
                                                         resize_mode=cfg.data.resize_mode)
        return stats

    def build_model(self, cfg, stats: dict, vocabulary: list[str]) -> keras.Model:
        """Normalisation (the Transform statistics, unless the backbone has its own) -> backbone -> logits."""
        m = cfg.model
        norm = {"mean": stats["mean"], "std": stats["std"]} if m.normalize else {}
        kwargs = m.builder_kwargs(cfg.data.download)
        if kwargs.get("whiten"):
            if "patch_covariance" not in stats:
                raise PipelineError("the whitening stem (whiten=True) needs the Transform's patch_covariance; "
                                    "these statistics have none: rerun Transform")
            kwargs["patch_covariance"] = stats["patch_covariance"]
        try:
            return image_classifier(m.name, num_classes=len(vocabulary), input_shape=(*m.image_size, m.channels),
                                    name=cfg.experiment, **norm, **kwargs)
        except ValueError as err:  # e.g. ImageNet weights missing offline: one line for the user
            raise PipelineError(str(err)) from None

    def compile_model(self, model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
        model.compile(optimizer=make_optimizer(cfg.training, steps_per_epoch),
                      loss=classification_loss(cfg.training.label_smoothing),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                      jit_compile=jit_compile)

    def train_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset:
        return _dataset(cfg, examples_dir, "train", input_size(model), model.input_shape[-1], True,
                        cfg.training.batch_size)

    def validation_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset:
        return _dataset(cfg, examples_dir, "eval", input_size(model), model.input_shape[-1], False,
                        cfg.training.batch_size)

    def callbacks(self, cfg, run_dir: str, examples_dir: str) -> list:
        """The eval split's confusion matrix in TensorBoard each epoch (tag eval/confusion_matrix)."""
        from kcv.callbacks.tensorboard import ConfusionMatrixSummary
        from pipelines.artifacts import read_vocabulary

        data = _dataset(cfg, examples_dir, "eval", tuple(cfg.model.image_size), cfg.model.channels, False,
                        cfg.training.batch_size)
        return [ConfusionMatrixSummary(os.path.join(run_dir, "tensorboard"), data, read_vocabulary(examples_dir))]

    def export(self, model: keras.Model, cfg, stats: dict, vocabulary: list[str], path: str) -> str:
        return export_classifier(model, path, vocabulary, input_size(model), model.input_shape[-1],
                                 cfg.data.resize_mode, max_image_pixels=cfg.data.max_image_pixels,
                                 submission_format=cfg.model.submission,
                                 test_time_flip=cfg.model.test_time_flip,
                                 test_time_translate=cfg.model.test_time_translate)

    def evaluate(self, saved_model_dir: str, cfg, examples_dir: str, vocabulary: list[str],
                 progress=None) -> dict:
        """Accuracy, loss, per-class accuracy and the confusion matrix (rows true, columns predicted)
        of a SavedModel (plain TensorFlow, the tensor signature)."""
        loaded = tf.saved_model.load(saved_model_dir)
        names = [n.decode() for n in loaded.class_names.numpy()]
        if names != list(vocabulary):
            return {"comparable": False, "reason": "the model's class names differ from this data's labels"}
        fn = loaded.signatures[IMAGES_SIGNATURE]
        channels = int(fn.structured_input_signature[1]["images"].shape[-1])
        correct = total = 0
        nll = 0.0
        per_class_correct = np.zeros(len(vocabulary))
        per_class_total = np.zeros(len(vocabulary))
        confusion = np.zeros((len(vocabulary), len(vocabulary)), np.int64)
        for images, labels in _dataset(cfg, examples_dir, "eval", signature_image_size(fn), channels, False, 256):
            probs = fn(images=tf.cast(images, tf.uint8))["probabilities"].numpy()
            y = labels.numpy()
            pred = probs.argmax(axis=1)
            correct += int((pred == y).sum())
            total += len(y)
            nll += float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)).sum())
            np.add.at(per_class_total, y, 1)
            np.add.at(per_class_correct, y, (pred == y).astype(float))
            np.add.at(confusion, (y, pred), 1)
            if progress is not None:
                progress.update(len(y))
        if total == 0:
            raise PipelineError("Split-eval is empty")
        return {
            "comparable": True, "primary_metric": self.primary_metric,
            "accuracy": correct / total, "loss": nll / total, "examples": total,
            "per_class_accuracy": {name: (per_class_correct[i] / per_class_total[i]) if per_class_total[i] else None
                                   for i, name in enumerate(vocabulary)},
            "confusion_matrix": confusion.tolist(),
        }
