"""A frozen patch-whitening convolution: airbench's first layer (Jordan 2024, after Page 2018).

The kernel comes from the data, not from training: the eigenvectors of the second-moment matrix
of the (normalised) training images' p x p patches, each scaled by 1 / sqrt(eigenvalue + eps),
and the same filters negated (so a ReLU/GELU after it keeps both signs). Its output channels
are decorrelated with unit variance over the training patches, which lets the first blocks
learn at full speed from the first step. The kernel is not trained (airbench freezes it); the
bias is.

(batch, H, W, C) -> (batch, H - p + 1, W - p + 1, 2 * p * p * C), "valid" padding.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np


def whitening_kernel(covariance: Sequence[Sequence[float]] | np.ndarray, patch_size: int, channels: int,
                     eps: float = 5e-4) -> np.ndarray:
    """(p*p*C, p*p*C) patch second moments, patches flattened (row, column, channel) ->
    (p, p, C, 2*p*p*C) Keras conv kernel: [V / sqrt(lambda + eps), -V / sqrt(lambda + eps)]."""
    cov = np.asarray(covariance, np.float64)
    size = patch_size * patch_size * channels
    if cov.shape != (size, size):
        raise ValueError(f"whitening_kernel: covariance must be ({size}, {size}) for {patch_size}x{patch_size} "
                         f"patches of {channels} channels, got {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError("whitening_kernel: covariance has non-finite entries")
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)  # ascending eigenvalues, vectors in columns
    filters = vectors / np.sqrt(np.maximum(values, 0.0) + eps)  # (size, size): one filter per column
    kernel = np.concatenate([filters, -filters], axis=1)  # (size, 2 * size)
    return kernel.reshape(patch_size, patch_size, channels, 2 * size).astype(np.float32)


@keras.saving.register_keras_serializable(package="kcv")
class PatchWhitening(keras.layers.Layer):
    """Frozen whitening conv (kernel non-trainable, bias trainable). `covariance` sets the kernel
    (see `whitening_kernel`); without it the kernel starts at zero, as when a saved model is
    rebuilt from its config before its weights are loaded."""

    def __init__(self, patch_size: int = 2, covariance=None, eps: float = 5e-4, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.eps = float(eps)
        self._covariance = None if covariance is None else np.asarray(covariance, np.float64)
        if self.patch_size < 1:
            raise ValueError(f"PatchWhitening: patch_size must be >= 1, got {patch_size}")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        size = self.patch_size * self.patch_size * channels
        init = (keras.initializers.Zeros() if self._covariance is None else
                keras.initializers.Constant(whitening_kernel(self._covariance, self.patch_size, channels, self.eps)))
        self.kernel = self.add_weight(name="kernel", shape=(self.patch_size, self.patch_size, channels, 2 * size),
                                      initializer=init, trainable=False)
        self.bias = self.add_weight(name="bias", shape=(2 * size,), initializer="zeros", trainable=True)

    def call(self, inputs):
        kernel = keras.ops.cast(self.kernel, inputs.dtype)
        y = keras.ops.conv(inputs, kernel, strides=1, padding="valid")
        return y + keras.ops.cast(self.bias, y.dtype)

    def compute_output_shape(self, input_shape):
        p = self.patch_size
        h = None if input_shape[1] is None else input_shape[1] - p + 1
        w = None if input_shape[2] is None else input_shape[2] - p + 1
        return (input_shape[0], h, w, 2 * p * p * int(input_shape[-1]))

    def get_config(self):
        # The kernel is a weight (saved with the model), so the covariance is not part of the config.
        return {**super().get_config(), "patch_size": self.patch_size, "eps": self.eps}
