"""DenseNet's dense block and transition block (d2l densenet.md).

As for the residual block, `*_parts` makes the named sublayers and `*_apply` wires them; the
Keras layers hold the parts, and model builders use the parts flat with a name prefix
(`dense1_conv1_conv`, `transition1_pool`).
"""
from __future__ import annotations

from typing import Any

import keras

from kcv.layers._common import (
    PartsLayer,
    build_chain,
    call_kwargs,
    keras_batch_norm,
    l2_regularizer,
)


def dense_block_parts(
    num_convs: int, growth_rate: int, prefix: str = "", weight_decay: float = 0.0
) -> dict[str, keras.layers.Layer]:
    """For i = 1..num_convs: conv{i}_bn, conv{i}_relu, conv{i}_conv (3x3, padding 1), concat{i}.

    The convs have no bias: every later use of their output channels starts with a BN, which
    removes a per-channel constant.
    """
    if num_convs < 1 or growth_rate < 1:
        raise ValueError(f"num_convs and growth_rate must be >= 1, got {num_convs}, {growth_rate}")
    reg = l2_regularizer(weight_decay)
    parts: dict[str, keras.layers.Layer] = {}
    for i in range(1, num_convs + 1):
        parts[f"conv{i}_bn"] = keras_batch_norm(f"{prefix}conv{i}_bn")
        parts[f"conv{i}_relu"] = keras.layers.ReLU(name=f"{prefix}conv{i}_relu")
        parts[f"conv{i}_conv"] = keras.layers.Conv2D(
            growth_rate, 3, padding="same", use_bias=False, kernel_regularizer=reg,
            name=f"{prefix}conv{i}_conv",
        )
        parts[f"concat{i}"] = keras.layers.Concatenate(axis=-1, name=f"{prefix}concat{i}")
    return parts


def _num_convs(parts: dict[str, keras.layers.Layer]) -> int:
    return sum(name.endswith("_conv") for name in parts)


def dense_block_apply(parts: dict[str, keras.layers.Layer], x, training: bool | None = None):
    """(N, H, W, C) -> (N, H, W, C + num_convs * growth_rate); each step concatenates [x, y]."""
    kw = call_kwargs(training)
    for i in range(1, _num_convs(parts) + 1):
        y = parts[f"conv{i}_relu"](parts[f"conv{i}_bn"](x, **kw))
        y = parts[f"conv{i}_conv"](y)
        x = parts[f"concat{i}"]([x, y])  # the book's torch.cat((X, Y), dim=1): input first
    return x


def dense_block_build(parts: dict[str, keras.layers.Layer], input_shape: tuple) -> None:
    shape = tuple(input_shape)
    for i in range(1, _num_convs(parts) + 1):
        y_shape = build_chain([parts[f"conv{i}_{n}"] for n in ("bn", "relu", "conv")], shape)
        shape = shape[:-1] + (shape[-1] + y_shape[-1],)


def transition_parts(
    filters: int, prefix: str = "", weight_decay: float = 0.0
) -> dict[str, keras.layers.Layer]:
    """bn, relu, conv (1x1, no bias: a BN follows in every use), pool (2x2 average, stride 2)."""
    if filters < 1:
        raise ValueError(f"filters must be >= 1, got {filters}")
    return {
        "bn": keras_batch_norm(prefix + "bn"),
        "relu": keras.layers.ReLU(name=prefix + "relu"),
        "conv": keras.layers.Conv2D(
            filters, 1, use_bias=False, kernel_regularizer=l2_regularizer(weight_decay),
            name=prefix + "conv",
        ),
        # No padding: floor(H / 2), like nn.AvgPool2d(kernel_size=2, stride=2).
        "pool": keras.layers.AveragePooling2D(2, strides=2, padding="valid", name=prefix + "pool"),
    }


def transition_apply(parts: dict[str, keras.layers.Layer], x, training: bool | None = None):
    """(N, H, W, C) -> (N, H // 2, W // 2, filters)."""
    y = parts["relu"](parts["bn"](x, **call_kwargs(training)))
    return parts["pool"](parts["conv"](y))


def transition_build(parts: dict[str, keras.layers.Layer], input_shape: tuple) -> None:
    build_chain([parts[n] for n in ("bn", "relu", "conv", "pool")], input_shape)


@keras.saving.register_keras_serializable(package="kcv")
class DenseBlock(PartsLayer):
    """The book's `DenseBlock(num_convs, num_channels)`: num_convs times
    x <- concat([x, conv3x3(relu(BN(x)))]) with `growth_rate` new channels each.
    (N, H, W, C) -> (N, H, W, C + num_convs * growth_rate).

    `weight_decay` > 0 adds an L2 penalty with gradient `weight_decay * w` on the conv kernels.
    """

    def __init__(
        self, num_convs: int, growth_rate: int, weight_decay: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_convs = int(num_convs)
        self.growth_rate = int(growth_rate)
        self.weight_decay = float(weight_decay)
        self._set_parts(dense_block_parts(self.num_convs, self.growth_rate, "", self.weight_decay))

    def build(self, input_shape: tuple) -> None:
        dense_block_build(self._parts(), input_shape)

    def call(self, inputs, training: bool | None = None):
        return dense_block_apply(self._parts(), inputs, training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape[:-1]) + (input_shape[-1] + self.num_convs * self.growth_rate,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_convs": self.num_convs,
                "growth_rate": self.growth_rate,
                "weight_decay": self.weight_decay,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kcv")
class TransitionBlock(PartsLayer):
    """The book's `transition_block(num_channels)`: BN-ReLU-conv1x1(filters)-avgpool(2, 2).
    (N, H, W, C) -> (N, H // 2, W // 2, filters).
    """

    def __init__(self, filters: int, weight_decay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.weight_decay = float(weight_decay)
        self._set_parts(transition_parts(self.filters, "", self.weight_decay))

    def build(self, input_shape: tuple) -> None:
        transition_build(self._parts(), input_shape)

    def call(self, inputs, training: bool | None = None):
        return transition_apply(self._parts(), inputs, training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, _ = input_shape
        return (n, None if h is None else h // 2, None if w is None else w // 2, self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"filters": self.filters, "weight_decay": self.weight_decay})
        return config
