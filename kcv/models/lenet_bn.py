"""The book's LeNet with batch normalization (d2l batch-norm.md), as a spec table + one builder."""
from __future__ import annotations

from typing import Sequence

import keras

from kcv.layers import BN_EPSILON, BN_MOMENTUM, BatchNorm, l2_regularizer, logits_dense
from kcv.models.registry import register

# The book's BN-LeNet body: each row is followed by BN and a sigmoid; conv rows also by a 2x2/2
# average pool. Rows: ("conv", filters, kernel) with no padding, or ("dense", units).
LENET_BN_SPEC: tuple[tuple, ...] = (
    ("conv", 6, 5),
    ("conv", 16, 5),
    ("dense", 120),
    ("dense", 84),
)

BATCH_NORMS = ("scratch", "keras")


def _batch_norm(kind: str, name: str) -> keras.layers.Layer:
    if kind == "scratch":
        return BatchNorm(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


@register("lenet_bn")
def lenet_bn(
    num_classes: int = 10,
    input_shape: Sequence[int] = (28, 28, 1),
    batch_norm: str = "scratch",
    weight_decay: float = 0.0,
) -> keras.Model:
    """BN-LeNet returning **logits** (N, num_classes); no softmax.

    conv1 (6, 5x5, no padding) -> BN -> sigmoid -> 2x2/2 avg-pool -> conv2 (16, 5x5) -> BN ->
    sigmoid -> avg-pool -> flatten -> dense1 120 -> BN -> sigmoid -> dense2 84 -> BN -> sigmoid ->
    logits. On 28x28x1: 24x24x6, 12x12x6, 8x8x16, 4x4x16, 256, 120, 84, num_classes.
    Inputs must be at least 16x16 (two valid 5x5 convs and two halvings).

    batch_norm="scratch" uses kcv.layers.BatchNorm, "keras" uses keras.layers.BatchNormalization;
    both with the book's momentum 0.9 (Keras convention) and epsilon 1e-5. Convs/dense layers
    followed by BN have no bias. Layer names: conv{i}, conv{i}_bn, conv{i}_sigmoid, conv{i}_pool,
    flatten, dense{i}, dense{i}_bn, dense{i}_sigmoid, logits. `weight_decay` > 0 adds L2 penalties
    on the kernels with gradient `weight_decay * w` (default 0; prefer the optimizer's).
    """
    if batch_norm not in BATCH_NORMS:
        raise ValueError(f"batch_norm must be one of {BATCH_NORMS}, got {batch_norm!r}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    reg = l2_regularizer(weight_decay)
    size = min(input_shape[0], input_shape[1])
    inputs = keras.Input(shape=tuple(input_shape), name="image")  # (N, H, W, C)
    x = inputs
    n_conv = n_dense = 0
    for row in LENET_BN_SPEC:
        if row[0] == "conv":
            n_conv += 1
            _, filters, kernel = row
            size = (size - kernel + 1) // 2
            if size < 1:
                raise ValueError(
                    f"input_shape {tuple(input_shape)} is too small for lenet_bn (>= 16x16)"
                )
            name = f"conv{n_conv}"
            x = keras.layers.Conv2D(
                filters, kernel, padding="valid", use_bias=False, kernel_regularizer=reg, name=name
            )(x)
        else:
            if n_dense == 0:
                x = keras.layers.Flatten(name="flatten")(x)
            n_dense += 1
            name = f"dense{n_dense}"
            x = keras.layers.Dense(row[1], use_bias=False, kernel_regularizer=reg, name=name)(x)
        x = _batch_norm(batch_norm, f"{name}_bn")(x)
        x = keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(x)
        if row[0] == "conv":
            x = keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)
    outputs = logits_dense(num_classes, weight_decay)(x)  # (N, num_classes)
    return keras.Model(inputs, outputs, name=f"lenet_bn_{batch_norm}")
