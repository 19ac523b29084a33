"""The classifier's last layer: a Dense producing logits, float32 under mixed precision."""
from __future__ import annotations

import keras

from kcv.layers._common import l2_regularizer


def logits_dense(
    num_classes: int, weight_decay: float = 0.0, name: str = "logits", use_bias: bool = True
) -> keras.layers.Dense:
    """Dense(num_classes) with no activation: (N, D) -> (N, num_classes) logits.

    Under a mixed-precision global policy the layer computes in float32, as Keras advises for the
    output layer, so losses and softmax see float32 logits.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    mixed = keras.mixed_precision.global_policy().compute_dtype in ("float16", "bfloat16")
    return keras.layers.Dense(
        num_classes,
        use_bias=use_bias,
        kernel_regularizer=l2_regularizer(weight_decay),
        dtype="float32" if mixed else None,
        name=name,
    )
