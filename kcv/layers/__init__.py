"""kcv.layers: Keras layers for the book's classic CNNs.

- `BatchNorm`: batch normalization written from scratch (book semantics, per-replica statistics).
- `FusedBatchNorm`: PyTorch BatchNorm2d semantics on TensorFlow's fused kernel (TinySSD's BN).
- `ResidualBlock`: ResNet's residual block.
- `DenseBlock`, `TransitionBlock`: DenseNet's blocks.

The `*_parts` / `*_apply` functions build the same blocks flat inside functional models, with a
name prefix per layer. `stem_layers` and `logits_dense` are the shared stem and classifier
output, `keras_batch_norm` is Keras BN with the book's momentum/epsilon, and `l2_regularizer(wd)`
an L2 penalty whose gradient is wd * w, like PyTorch's weight_decay.
"""
from kcv.layers._common import BN_EPSILON, BN_MOMENTUM, keras_batch_norm, l2_regularizer
from kcv.layers.batch_norm import BatchNorm
from kcv.layers.dense import (
    DenseBlock,
    TransitionBlock,
    dense_block_apply,
    dense_block_parts,
    transition_apply,
    transition_parts,
)
from kcv.layers.fused_batch_norm import FusedBatchNorm
from kcv.layers.head import logits_dense
from kcv.layers.residual import ResidualBlock, residual_apply, residual_parts
from kcv.layers.stem import stem_layers

__all__ = [
    "BN_EPSILON",
    "BN_MOMENTUM",
    "BatchNorm",
    "DenseBlock",
    "FusedBatchNorm",
    "ResidualBlock",
    "TransitionBlock",
    "dense_block_apply",
    "dense_block_parts",
    "keras_batch_norm",
    "l2_regularizer",
    "logits_dense",
    "residual_apply",
    "residual_parts",
    "stem_layers",
    "transition_apply",
    "transition_parts",
]
