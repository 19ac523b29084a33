"""Batch normalization written from scratch, with the book's semantics (d2l batch-norm.md)."""
from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kcv")
class BatchNorm(keras.layers.Layer):
    """Batch normalization over the last (channel) axis, written out as in the book.

    Training (`training=True`): normalise with the batch statistics, taken per channel over every
    axis but the last, i.e. over N for dense inputs (N, C) and over N, H, W for NHWC conv inputs
    (N, H, W, C). The variance is biased (mean of squared deviations). The moving statistics are
    then updated as `moving = momentum * moving + (1 - momentum) * batch`; with the default
    `momentum=0.9` that is the book's `0.9 * moving + 0.1 * batch` (PyTorch's momentum 0.1 on
    the *new* value is Keras' momentum 0.9 on the *old* one).
    Inference: normalise with the moving statistics. Output `gamma * x_hat + beta`, same shape.

    Like `keras.layers.BatchNormalization`, a layer with `trainable=False` always runs in
    inference mode (the usual fine-tuning behaviour).

    Mixed precision: the statistics and the normalisation are computed in float32 whatever the
    input dtype (float16 sums overflow), the weights are float32, and the output is cast to the
    layer's compute dtype.

    Distribution: under `tf.distribute` strategies the batch statistics are **per replica**
    (like Keras' default, non-synchronised BatchNormalization): each replica normalises its own
    slice of the global batch. The moving statistics are mirrored variables aggregated by mean,
    so after a step every replica holds `momentum * moving + (1 - momentum) * mean over replicas
    of the per-replica statistics`.

    Args:
        momentum: weight of the old moving value in the moving-average update.
        epsilon: added to the variance before the square root (book: 1e-5).
    """

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        if epsilon <= 0.0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"BatchNorm needs inputs (N, ..., C) with a known channel count; got {input_shape}"
            )
        channels = (int(input_shape[-1]),)
        # Weights stay float32 under mixed precision (autocast=False): they are read in the
        # float32 statistics path below.
        self.gamma = self.add_weight(
            shape=channels, name="gamma", initializer="ones", trainable=True, autocast=False
        )
        self.beta = self.add_weight(
            shape=channels, name="beta", initializer="zeros", trainable=True, autocast=False
        )
        # aggregation="mean": replica-context assigns under MirroredStrategy are averaged, so the
        # mirrored copies never diverge.
        self.moving_mean = self.add_weight(
            shape=channels,
            name="moving_mean",
            initializer="zeros",
            trainable=False,
            autocast=False,
            aggregation="mean",
        )
        self.moving_variance = self.add_weight(
            shape=channels,
            name="moving_variance",
            initializer="ones",
            trainable=False,
            autocast=False,
            aggregation="mean",
        )
        self._reduction_axes = list(range(len(input_shape) - 1))  # all but the channel axis

    def call(self, inputs, training: bool | None = None):
        x = ops.cast(inputs, "float32")  # (N, ..., C)
        if training and self.trainable:
            mean = ops.mean(x, axis=self._reduction_axes)  # (C,)
            # Biased variance: mean of squared deviations, as the book writes it.
            variance = ops.mean(ops.square(x - mean), axis=self._reduction_axes)  # (C,)
            m = self.momentum
            self.moving_mean.assign(m * self.moving_mean + (1.0 - m) * mean)
            self.moving_variance.assign(m * self.moving_variance + (1.0 - m) * variance)
        else:
            mean = ops.convert_to_tensor(self.moving_mean)
            variance = ops.convert_to_tensor(self.moving_variance)
        x_hat = (x - mean) / ops.sqrt(variance + self.epsilon)
        y = self.gamma * x_hat + self.beta
        return ops.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"momentum": self.momentum, "epsilon": self.epsilon})
        return config
