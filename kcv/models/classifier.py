"""The classifier every kcv image-classification path trains: normalise -> backbone -> float32 logits.

The Trainer (pipelines/tasks/classification.py), the benchmarks and the GPU check all build it
here, so they time and train the same graph. Inputs are float images in [0, 255],
(batch, H, W, C); the output is (batch, num_classes) float32 logits even under a mixed-precision
policy, so the softmax and the loss stay float32.
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from kcv.models.registry import get_model


def image_classifier(
    backbone: str | keras.Model,
    /,
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    name: str = "classifier",
    **backbone_kwargs: Any,
) -> keras.Model:
    """A `keras.Model` (batch, H, W, C) in [0, 255] -> (batch, num_classes) float32 logits.

    backbone: a registered model name (built with num_classes, input_shape and backbone_kwargs)
      or a built keras.Model mapping the normalised images to logits.
    mean, std: per-channel statistics (length C) of the training images at this size, 0-255;
      both None leaves the inputs as they are (pretrained backbones carry their own preprocessing).
    """
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    if mean is not None:
        x = keras.layers.Normalization(mean=list(mean), variance=np.square(std).tolist(), name="normalize")(x)
    if isinstance(backbone, str):
        backbone = get_model(backbone, num_classes=num_classes, input_shape=tuple(input_shape), **backbone_kwargs)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(backbone(x))
    return keras.Model(inputs, logits, name=name)
