"""ResNet-18 (d2l resnet.md) and the CIFAR-10 variant (d2l.resnet18): data + one builder."""
from __future__ import annotations

from typing import Sequence

import keras

from kcv.layers import logits_dense, residual_apply, residual_parts, stem_layers
from kcv.models.registry import register

# (filters, residual blocks, stride of the first block) per stage; a stage whose first block
# changes shape uses the 1x1-conv shortcut. Book: ((2, 64), (2, 128), (2, 256), (2, 512)).
RESNET18_STAGES: tuple[tuple[int, int, int], ...] = (
    (64, 2, 1),
    (128, 2, 2),
    (256, 2, 2),
    (512, 2, 2),
)


def build_resnet(
    stages: Sequence[tuple[int, int, int]],
    num_classes: int,
    input_shape: Sequence[int],
    variant: str,
    weight_decay: float = 0.0,
    name: str = "resnet",
) -> keras.Model:
    """Stem (see kcv.layers.stem), residual stages, global average pool, Dense(num_classes) logits.

    Layer names: stem_*, stage{s}_block{b}_{conv1,bn1,relu1,conv2,bn2,shortcut_conv,add,out}
    (s, b from 1; `stage{s}_block{b}_out` is a block's output), gap, logits.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")  # (N, H, W, C)
    x = inputs
    for layer in stem_layers(variant, filters=64, weight_decay=weight_decay):
        x = layer(x)
    channels = 64
    for s, (filters, blocks, strides) in enumerate(stages, start=1):
        for b in range(1, blocks + 1):
            stride = strides if b == 1 else 1
            parts = residual_parts(
                filters,
                use_1x1conv=(stride != 1 or channels != filters),
                strides=stride,
                prefix=f"stage{s}_block{b}_",
                weight_decay=weight_decay,
            )
            x = residual_apply(parts, x)
            channels = filters
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)  # (N, channels)
    outputs = logits_dense(num_classes, weight_decay)(x)  # (N, num_classes)
    return keras.Model(inputs, outputs, name=name)


@register("resnet18")
def resnet18(
    num_classes: int = 10,
    input_shape: Sequence[int] = (96, 96, 1),
    variant: str = "d2l",
    weight_decay: float = 0.0,
) -> keras.Model:
    """ResNet-18 returning **logits** (N, num_classes); no softmax.

    variant="d2l": the book's resnet.md model: 7x7/2 conv (padding 3), BN, ReLU, 3x3/2 max-pool
        (padding 1); on 96x96x1 the stages give 24x24x64, 12x12x128, 6x6x256, 3x3x512.
    variant="cifar": d2l.resnet18 of the Kaggle CIFAR-10 section: 3x3/1 conv, BN, ReLU, no pool.
    Then 4 stages x 2 residual blocks (64, 128, 256, 512 filters), global average pool, Dense.

    Any input size and channel count works. BN is Keras BatchNormalization with PyTorch's
    momentum/epsilon; convs followed by BN have no bias. `weight_decay` > 0 adds L2 penalties on
    conv/dense kernels with gradient `weight_decay * w`; default 0 because the pipeline applies
    weight decay through the optimizer's `weight_decay`.
    """
    return build_resnet(
        RESNET18_STAGES, num_classes, input_shape, variant, weight_decay, name=f"resnet18_{variant}"
    )
