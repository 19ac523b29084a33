"""A small VGG-like CIFAR-10 net for time-to-accuracy on CPUs (the `cifar10_fast` recipe).

Shape of design from airbench (Jordan 2024) and the DAWNBench ResNet-9 (Page 2018): a cheap
2x2 stem, then three blocks of conv3x3 -> max-pool 2 -> BN -> act -> conv3x3 -> BN -> act, a
global max pool and a bias-free linear layer on features scaled by `logit_scale` (a fixed
temperature, as both recipes use). Pooling right after the first conv of a block runs the second
conv at a quarter of the pixels. Widths 64/256/256 are airbench's. ReLU is the default: airbench's
GELU costs ~15-25 % more per train step on 2 AVX512-BF16 cores (399-410 vs 462-515 img/s at batch
512 alone; 1057 vs 873 s of steps in a 10-epoch run); with BN momentum 0.6 and lookahead it
gained 1.1 points (seed 0: 0.8758 -> 0.8868), GELU alone not measured. Under mixed_bfloat16 on an AMX Xeon this net trains ~2.5x faster than in float32.
The preset (`cifar10_fast`) takes airbench's other parts: `bn_scale=False` (only the BN offsets
train), `whiten=True` (a frozen patch-whitening stem, `kcv.layers.whitening`, from the Transform's
patch moments), `identity_init=True` (partial-identity convs), GELU and bn_momentum 0.6; the
optimizer adds lookahead.

(batch, 32, 32, 3) normalised images -> (batch, num_classes) logits; spatial 32 -> 31 (stem,
valid) -> 15 -> 7 -> 3 -> pooled.
"""
from __future__ import annotations

from typing import Sequence

import keras

from kcv.layers.fused_batch_norm import FusedBatchNorm
from kcv.layers.head import logits_dense
from kcv.layers.initializers import PartialIdentity
from kcv.layers.whitening import PatchWhitening
from kcv.models.registry import register


@register("fast_cifar")
def fast_cifar(num_classes: int = 10, input_shape: tuple[int, int, int] = (32, 32, 3),
               widths: Sequence[int] = (64, 256, 256), stem_width: int = 24, activation: str = "relu",
               bn_momentum: float = 0.2, logit_scale: float = 0.125, bn_scale: bool = True,
               whiten: bool = False, patch_covariance: Sequence[Sequence[float]] | None = None,
               identity_init: bool = False) -> keras.Model:
    """The fast CIFAR-10 net; bn_momentum is torch's convention (weight of the new batch);
    bn_scale=False keeps every BatchNorm's gamma at 1 (airbench trains only the offsets).

    whiten: the stem is a frozen `PatchWhitening` (2x2, 2 * 12 = 24 channels for RGB, so
      stem_width must be 24 for 3 channels) set from `patch_covariance`, the (12, 12) second
      moments of the normalised training images' 2x2 patches (`kcv.data.statistics.patch_covariance`;
      the pipeline's Transform computes it); otherwise a trained 2x2 conv.
    identity_init: every 3x3 conv starts as a partial identity (`PartialIdentity`, airbench's dirac init).
    """
    if len(widths) < 1 or min(widths) < 1 or stem_width < 1:
        raise ValueError(f"fast_cifar: widths and stem_width must be positive, got {list(widths)}, {stem_width}")
    if patch_covariance is not None and not whiten:
        raise ValueError("fast_cifar: patch_covariance is only used with whiten=True")
    inputs = keras.Input(input_shape, name="images")
    if whiten:
        if patch_covariance is None:
            raise ValueError("fast_cifar: whiten=True needs patch_covariance, the (12, 12) second moments of the "
                             "normalised training images' 2x2 patches (kcv.data.statistics.patch_covariance)")
        if stem_width != 2 * 4 * input_shape[-1]:
            raise ValueError(f"fast_cifar: a whitening stem has 2 x 2 x 2 x channels = {8 * input_shape[-1]} "
                             f"channels; got stem_width={stem_width}")
        x = PatchWhitening(2, patch_covariance, name="stem_whitening")(inputs)  # (B, H-1, W-1, stem)
    else:
        x = keras.layers.Conv2D(stem_width, 2, padding="valid", name="stem_conv")(inputs)  # (B, H-1, W-1, stem)
    x = keras.layers.Activation(activation, name="stem_act")(x)
    init = PartialIdentity() if identity_init else "glorot_uniform"
    for i, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=init,
                                name=f"block{i}_conv1")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)  # (B, h/2, w/2, width)
        x = FusedBatchNorm(bn_momentum, scale=bn_scale, name=f"block{i}_bn1")(x)
        x = keras.layers.Activation(activation, name=f"block{i}_act1")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=init,
                                name=f"block{i}_conv2")(x)
        x = FusedBatchNorm(bn_momentum, scale=bn_scale, name=f"block{i}_bn2")(x)
        x = keras.layers.Activation(activation, name=f"block{i}_act2")(x)
    x = keras.layers.GlobalMaxPooling2D(name="pool")(x)  # (B, widths[-1])
    # Scaling the features before a bias-free Dense is scaling the logits: the recipes' temperature.
    x = keras.layers.Rescaling(logit_scale, name="logit_scale")(x)
    outputs = logits_dense(num_classes, use_bias=False)(x)
    return keras.Model(inputs, outputs, name="fast_cifar")
