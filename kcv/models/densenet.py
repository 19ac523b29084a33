"""DenseNet (d2l densenet.md), as a spec table + one builder."""
from __future__ import annotations

from typing import Sequence

import keras

from kcv.layers import (
    dense_block_apply,
    dense_block_parts,
    keras_batch_norm,
    logits_dense,
    stem_layers,
    transition_apply,
    transition_parts,
)
from kcv.models.registry import register

# The book's DenseNet: 64 stem channels, growth rate 32, four dense blocks of 4 convs each.
DENSENET_ARCH: tuple[int, ...] = (4, 4, 4, 4)
GROWTH_RATE = 32
STEM_CHANNELS = 64


def build_densenet(
    arch: Sequence[int],
    growth_rate: int,
    num_classes: int,
    input_shape: Sequence[int],
    stem_channels: int = STEM_CHANNELS,
    weight_decay: float = 0.0,
    name: str = "densenet",
) -> keras.Model:
    """d2l stem, dense blocks with channel-halving transitions between them, BN-ReLU-GAP-Dense.

    Layer names: stem_*, dense{i}_conv{j}_{bn,relu,conv}, dense{i}_concat{j},
    transition{i}_{bn,relu,conv,pool}, head_bn, head_relu, gap, logits.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    size = min(input_shape[0], input_shape[1])
    size = -(-(-(-size // 2)) // 2)  # the d2l stem: ceil(ceil(H / 2) / 2)
    for _ in range(len(arch) - 1):
        size //= 2  # each transition's 2x2 average pool floors
    if size < 1:
        raise ValueError(
            f"input_shape {tuple(input_shape)} is too small for {len(arch) - 1} transitions"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="image")  # (N, H, W, C)
    x = inputs
    for layer in stem_layers("d2l", filters=stem_channels, weight_decay=weight_decay):
        x = layer(x)
    channels = stem_channels
    for i, num_convs in enumerate(arch, start=1):
        parts = dense_block_parts(num_convs, growth_rate, f"dense{i}_", weight_decay)
        x = dense_block_apply(parts, x)
        channels += num_convs * growth_rate
        if i < len(arch):
            channels //= 2  # the book: 192 -> 96, 224 -> 112, 240 -> 120
            x = transition_apply(transition_parts(channels, f"transition{i}_", weight_decay), x)
    x = keras_batch_norm("head_bn")(x)
    x = keras.layers.ReLU(name="head_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)  # (N, channels)
    outputs = logits_dense(num_classes, weight_decay)(x)  # (N, num_classes)
    return keras.Model(inputs, outputs, name=name)


@register("densenet")
def densenet(
    num_classes: int = 10,
    input_shape: Sequence[int] = (96, 96, 1),
    weight_decay: float = 0.0,
) -> keras.Model:
    """The book's DenseNet returning **logits** (N, num_classes); no softmax.

    Stem as resnet18 d2l (7x7/2 conv 64, BN, ReLU, 3x3/2 max-pool), dense blocks (4, 4, 4, 4)
    with growth rate 32 and transitions (BN-ReLU-conv1x1-avgpool2) halving the channels:
    64 -> 192 -> 96 -> 224 -> 112 -> 240 -> 120 -> 248; then BN, ReLU, global average pool and
    Dense(num_classes). On 96x96: 24x24 after the stem, 12, 6, 3 after the transitions.
    Any channel count and any input of at least 29x29 works (the stem quarters it, then three
    transitions halve it). BN uses PyTorch's momentum/epsilon; convs have no bias (a BN follows
    every use of their output). `weight_decay` > 0 adds L2 penalties on the kernels with
    gradient `weight_decay * w` (default 0; prefer the optimizer's).
    """
    return build_densenet(
        DENSENET_ARCH, GROWTH_RATE, num_classes, input_shape, STEM_CHANNELS, weight_decay,
        name="densenet",
    )
