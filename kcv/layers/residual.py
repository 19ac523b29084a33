"""ResNet's residual block (d2l resnet.md), as a Keras layer and as flat functional pieces.

The same two functions define the block for both uses: `residual_parts` makes the named sublayers
and `residual_apply` wires them. `ResidualBlock` holds the parts as one layer; model builders call
the two functions with a name prefix so every conv/BN is a top-level layer of the model
(`stage2_block1_conv1`) and features can be picked with `model.get_layer(name)`.
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


def residual_parts(
    filters: int,
    use_1x1conv: bool = False,
    strides: int = 1,
    prefix: str = "",
    weight_decay: float = 0.0,
) -> dict[str, keras.layers.Layer]:
    """The block's sublayers in call order, named `prefix + part`.

    Parts: [pad1] conv1 bn1 relu1 conv2 bn2 [shortcut_conv] add out.
    Convs followed by BN have no bias: BN subtracts the batch mean, so such a bias is a no-op that
    only ever gets a zero gradient (the book keeps it; see BUILD.md's "Deviations from the book"
    table).
    """
    if filters < 1 or strides < 1:
        raise ValueError(f"filters and strides must be >= 1, got {filters}, {strides}")
    reg = l2_regularizer(weight_decay)
    conv = dict(use_bias=False, kernel_regularizer=reg)
    parts: dict[str, keras.layers.Layer] = {}
    if strides == 1:
        # 3x3, padding 1, stride 1: TF "same" pads 1 on each side, exactly like PyTorch.
        parts["conv1"] = keras.layers.Conv2D(
            filters, 3, padding="same", name=prefix + "conv1", **conv
        )
    else:
        # Stride 2 with "same" would pad (0, 1) on even inputs and sample other pixels than
        # PyTorch's symmetric padding 1, so pad explicitly and convolve "valid".
        parts["pad1"] = keras.layers.ZeroPadding2D(1, name=prefix + "pad1")
        parts["conv1"] = keras.layers.Conv2D(
            filters, 3, strides=strides, padding="valid", name=prefix + "conv1", **conv
        )
    parts["bn1"] = keras_batch_norm(prefix + "bn1")
    parts["relu1"] = keras.layers.ReLU(name=prefix + "relu1")
    parts["conv2"] = keras.layers.Conv2D(filters, 3, padding="same", name=prefix + "conv2", **conv)
    parts["bn2"] = keras_batch_norm(prefix + "bn2")
    if use_1x1conv:
        # 1x1 stride s "valid" samples pixels 0, s, 2s, ... like PyTorch; no BN follows, so it
        # keeps its bias, as in the book.
        parts["shortcut_conv"] = keras.layers.Conv2D(
            filters, 1, strides=strides, padding="valid", kernel_regularizer=reg,
            name=prefix + "shortcut_conv",
        )
    parts["add"] = keras.layers.Add(name=prefix + "add")
    parts["out"] = keras.layers.ReLU(name=prefix + "out")
    return parts


def residual_apply(parts: dict[str, keras.layers.Layer], x, training: bool | None = None):
    """(N, H, W, C) -> (N, ceil(H / s), ceil(W / s), filters): relu(F(x) + shortcut(x))."""
    kw = call_kwargs(training)
    filters = parts["conv1"].filters
    strides = parts["conv1"].strides[0]
    if "shortcut_conv" not in parts and (strides != 1 or x.shape[-1] != filters):
        raise ValueError(
            f"identity shortcut needs strides 1 and {filters} input channels, got strides "
            f"{strides} and input shape {tuple(x.shape)}; use use_1x1conv=True"
        )
    y = parts["pad1"](x) if "pad1" in parts else x
    y = parts["relu1"](parts["bn1"](parts["conv1"](y), **kw))
    y = parts["bn2"](parts["conv2"](y), **kw)
    shortcut = parts["shortcut_conv"](x) if "shortcut_conv" in parts else x
    return parts["out"](parts["add"]([y, shortcut]))


def residual_build(parts: dict[str, keras.layers.Layer], input_shape: tuple) -> None:
    """Create the parts' variables for inputs of `input_shape` (what `residual_apply` would)."""
    main = ["pad1", "conv1", "bn1", "relu1", "conv2", "bn2"]
    build_chain([parts[n] for n in main if n in parts], input_shape)
    if "shortcut_conv" in parts:
        build_chain([parts["shortcut_conv"]], input_shape)


@keras.saving.register_keras_serializable(package="kcv")
class ResidualBlock(PartsLayer):
    """The book's `Residual`: conv3x3(stride s)-BN-ReLU-conv3x3-BN, plus x or conv1x1(stride s)(x),
    then ReLU. (N, H, W, C) -> (N, ceil(H / s), ceil(W / s), filters).

    BN is Keras' BatchNormalization with PyTorch's momentum/epsilon (0.9 / 1e-5 in Keras terms).
    `weight_decay` > 0 adds an L2 penalty on the conv kernels whose gradient is
    `weight_decay * w` (default 0: apply weight decay through the optimizer instead).
    """

    def __init__(
        self,
        filters: int,
        use_1x1conv: bool = False,
        strides: int = 1,
        weight_decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.use_1x1conv = bool(use_1x1conv)
        self.strides = int(strides)
        self.weight_decay = float(weight_decay)
        self._set_parts(
            residual_parts(self.filters, self.use_1x1conv, self.strides, "", self.weight_decay)
        )

    def build(self, input_shape: tuple) -> None:
        residual_build(self._parts(), input_shape)

    def call(self, inputs, training: bool | None = None):
        return residual_apply(self._parts(), inputs, training)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, _ = input_shape
        s = self.strides
        # PyTorch: floor((H + 2 - 3) / s) + 1 == ceil(H / s).
        h = None if h is None else -(-h // s)
        w = None if w is None else -(-w // s)
        return (n, h, w, self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "use_1x1conv": self.use_1x1conv,
                "strides": self.strides,
                "weight_decay": self.weight_decay,
            }
        )
        return config
