"""Image classification: labelled images in, softmax over the vocabulary out."""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.input import classification_dataset
from kcv.models import get_model
from kcv.serving.classifier import IMAGES_SIGNATURE, export_classifier
from pipelines.artifacts import PipelineError
from pipelines.optimizers import make_optimizer


def dataset(cfg, examples_dir: str, split: str, training: bool, batch_size: int, with_ids: bool = False):
    return classification_dataset(
        os.path.join(examples_dir, f"Split-{split}"), batch_size=batch_size, training=training,
        image_size=cfg.image_size, channels=cfg.channels, augment=cfg.augment if training else "none",
        resize_mode=cfg.resize_mode, seed=cfg.seed, with_ids=with_ids)


def image_statistics(cfg, split_dir: str) -> dict:
    """Per-channel mean and std (population) of a split's images at the model's size, 0-255."""
    ds = classification_dataset(split_dir, batch_size=256, training=False, image_size=cfg.image_size,
                                channels=cfg.channels, resize_mode=cfg.resize_mode, cache=False)
    total = np.zeros(cfg.channels, np.float64)
    total_sq = np.zeros(cfg.channels, np.float64)
    pixels = 0
    for images, _ in ds:
        x = images.numpy().astype(np.float64)
        total += x.sum(axis=(0, 1, 2))
        total_sq += (x**2).sum(axis=(0, 1, 2))
        pixels += x.shape[0] * x.shape[1] * x.shape[2]
    if pixels == 0:
        raise ValueError(f"{split_dir} is empty")
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-12))
    return {"mean": mean.tolist(), "std": std.tolist(), "image_size": list(cfg.image_size), "channels": cfg.channels}


statistics = image_statistics


def preflight(cfg) -> None:
    """Checks that can fail before any data is read: pretrained weights present (or downloadable)."""
    kwargs = cfg.model_kwargs
    weights = kwargs.get("weights")
    if cfg.model != "finetune" or weights is None or "Trainer" not in cfg.components:
        return
    from kcv.models.finetune import imagenet_weights_path

    if weights == "imagenet":
        try:
            imagenet_weights_path(kwargs["backbone"], kwargs.get("keep_imagenet_top", True),
                                  allow_download=kwargs.get("allow_download", False))
        except ValueError as err:
            raise PipelineError(str(err)) from None
    elif not os.path.isfile(weights):
        raise PipelineError(f"--weights={weights}: no such file (use imagenet, a local .h5 path, or none)")


def build_model(cfg, stats: dict, vocab: list[str]) -> keras.Model:
    """Normalisation (the Transform statistics) -> registered backbone -> float32 logits.

    Inputs are float images in [0, 255], (batch, H, W, C).
    """
    height, width = cfg.image_size
    shape = (height, width, cfg.channels)
    inputs = keras.Input(shape, name="images")
    x = inputs
    if cfg.normalize:  # pretrained backbones (normalize=False) carry their own preprocessing
        x = keras.layers.Normalization(mean=stats["mean"], variance=np.square(stats["std"]).tolist(),
                                       name="normalize")(x)
    try:
        backbone = get_model(cfg.model, num_classes=len(vocab), input_shape=shape, **cfg.model_kwargs)
    except ValueError as err:  # e.g. ImageNet weights missing offline: one line for the user
        raise PipelineError(str(err)) from None
    logits = backbone(x)
    # Under mixed precision the softmax and loss stay float32.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(inputs, logits, name=cfg.experiment)


def validation_dataset(cfg, examples_dir: str, batch_size: int):
    return dataset(cfg, examples_dir, "eval", training=False, batch_size=batch_size)


def callbacks(cfg, run_dir: str, examples_dir: str) -> list:
    return []


def compile_model(model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
    model.compile(optimizer=make_optimizer(cfg, steps_per_epoch),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=jit_compile)


def export(model: keras.Model, cfg, stats: dict, vocab: list[str], path: str) -> str:
    return export_classifier(model, path, vocab, cfg.image_size, cfg.channels, cfg.resize_mode)


def evaluate(saved_model_dir: str, cfg, examples_dir: str, vocab: list[str]) -> dict:
    """Score a SavedModel (plain TensorFlow, the tensor signature) on Split-eval."""
    loaded = tf.saved_model.load(saved_model_dir)
    names = [n.decode() for n in loaded.class_names.numpy()]
    if names != list(vocab):
        return {"comparable": False, "reason": "the model's class names differ from this data's labels"}
    fn = loaded.signatures[IMAGES_SIGNATURE]
    correct = total = 0
    nll = 0.0
    per_class_correct = np.zeros(len(vocab))
    per_class_total = np.zeros(len(vocab))
    for images, labels in dataset(cfg, examples_dir, "eval", training=False, batch_size=256):
        out = fn(images=tf.cast(images, tf.uint8))
        probs = out["probabilities"].numpy()
        y = labels.numpy()
        pred = probs.argmax(axis=1)
        correct += int((pred == y).sum())
        total += len(y)
        nll += float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)).sum())
        np.add.at(per_class_total, y, 1)
        np.add.at(per_class_correct, y, (pred == y).astype(float))
    if total == 0:
        raise ValueError("Split-eval is empty")
    return {
        "comparable": True,
        "accuracy": correct / total,
        "loss": nll / total,
        "examples": total,
        "per_class_accuracy": {name: (per_class_correct[i] / per_class_total[i]) if per_class_total[i] else None
                               for i, name in enumerate(vocab)},
        "primary_metric": "accuracy",
    }
