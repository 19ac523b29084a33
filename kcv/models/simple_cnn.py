"""A small CNN (conv-BN-ReLU x3, GAP, dense) for quick runs, smoke tests and pipeline checks."""
from __future__ import annotations

import keras

from kcv.layers.head import logits_dense
from kcv.models.registry import register


@register("simple_cnn")
def simple_cnn(num_classes: int = 10, input_shape: tuple[int, int, int] = (32, 32, 3), width: int = 16) -> keras.Model:
    """Three 3x3 conv stages (width, 2*width, 4*width; stride 2 after the first), GAP, Dense logits
    (float32 under a mixed-precision policy, like the other classifiers)."""
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    for i, (filters, strides) in enumerate(((width, 1), (2 * width, 2), (4 * width, 2)), start=1):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = logits_dense(num_classes)(x)  # Dense "logits"
    return keras.Model(inputs, outputs, name="simple_cnn")
