"""Small helpers shared by the blocks: PyTorch-default BatchNorm and weight-decay regulariser."""
from __future__ import annotations

from typing import Any

import keras

# PyTorch nn.BatchNorm2d defaults (momentum 0.1 on the new value, eps 1e-5) in Keras' terms; the
# book's ResNet/DenseNet use them. Keras' own defaults are momentum 0.99, epsilon 1e-3.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def keras_batch_norm(name: str) -> keras.layers.BatchNormalization:
    """Keras' BatchNormalization with the book's (PyTorch's) momentum and epsilon."""
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def l2_regularizer(weight_decay: float) -> keras.regularizers.Regularizer | None:
    """L2 penalty whose gradient is `weight_decay * w`, like PyTorch SGD's `weight_decay`.

    Keras' L2(l2) adds `l2 * sum(w**2)` to the loss (gradient `2 * l2 * w`), hence l2 = wd / 2.
    Returns None for weight_decay == 0 so configs stay free of regularisers by default.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def call_kwargs(training: Any) -> dict[str, Any]:
    """Pass `training` on only when it is set, so functional graphs resolve it at call time."""
    return {} if training is None else {"training": training}


def build_chain(layers: list[keras.layers.Layer], input_shape: tuple) -> tuple:
    """Build `layers` as if applied one after another to `input_shape`; returns the output shape.

    Composite layers need an explicit `build()` so `.keras` loading can create their sublayers'
    variables before reading the weights.
    """
    shape = tuple(input_shape)
    for layer in layers:
        if not layer.built:
            layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


class PartsLayer(keras.layers.Layer):
    """A layer that holds named parts as tracked attributes (saved under the part names)."""

    def _set_parts(self, parts: dict[str, keras.layers.Layer]) -> None:
        self._part_names = tuple(parts)
        for name, layer in parts.items():
            setattr(self, name, layer)

    def _parts(self) -> dict[str, keras.layers.Layer]:
        return {name: getattr(self, name) for name in self._part_names}
