"""The input stems of the book's ResNet/DenseNet, as specs plus one function.

PyTorch pads symmetrically; TF's "same" pads (0, 1) for stride 2 on even inputs, which gives the
same shapes but samples other pixels. Where the two differ the stem pads explicitly with
ZeroPadding2D and convolves/pools "valid", so shapes AND sampled positions match the book.
"""
from __future__ import annotations

import keras

from kcv.layers._common import keras_batch_norm, l2_regularizer

# conv (kernel, stride, padding) and optional max-pool (kernel, stride, padding), PyTorch terms.
STEMS: dict[str, dict] = {
    # d2l resnet.md b1: Conv 64 k7 s2 p3, BN, ReLU, MaxPool k3 s2 p1 (also DenseNet's b1).
    "d2l": {"conv": (7, 2, 3), "pool": (3, 2, 1)},
    # d2l.resnet18 (Kaggle CIFAR-10): Conv 64 k3 s1 p1, BN, ReLU, no max-pool.
    "cifar": {"conv": (3, 1, 1), "pool": None},
}


def stem_layers(
    variant: str = "d2l", filters: int = 64, weight_decay: float = 0.0
) -> list[keras.layers.Layer]:
    """Layers to apply in order: [stem_pad] stem_conv stem_bn stem_relu [stem_pool_pad stem_pool].

    (N, H, W, C) -> d2l: (N, ceil(ceil(H / 2) / 2), ..., filters); cifar: (N, H, W, filters).
    The conv has no bias (a BN follows).
    """
    if variant not in STEMS:
        raise ValueError(f"unknown stem variant {variant!r}; expected one of {sorted(STEMS)}")
    spec = STEMS[variant]
    kernel, stride, pad = spec["conv"]
    reg = l2_regularizer(weight_decay)
    layers: list[keras.layers.Layer] = []
    if stride == 1 and 2 * pad == kernel - 1:
        padding = "same"  # stride 1, symmetric padding (k - 1) / 2: identical to PyTorch
    else:
        layers.append(keras.layers.ZeroPadding2D(pad, name="stem_pad"))
        padding = "valid"
    layers += [
        keras.layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, use_bias=False,
            kernel_regularizer=reg, name="stem_conv",
        ),
        keras_batch_norm("stem_bn"),
        keras.layers.ReLU(name="stem_relu"),
    ]
    if spec["pool"] is not None:
        kernel, stride, pad = spec["pool"]
        # PyTorch max-pool pads with -inf; padding with zeros is the same here because the input
        # follows a ReLU (>= 0), so a padded zero never exceeds the window's real maximum.
        layers += [
            keras.layers.ZeroPadding2D(pad, name="stem_pool_pad"),
            keras.layers.MaxPooling2D(kernel, strides=stride, padding="valid", name="stem_pool"),
        ]
    return layers
