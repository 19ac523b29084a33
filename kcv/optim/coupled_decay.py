"""SGD with weight decay added to the gradient (L2), as PyTorch and MXNet apply it.

Keras' `weight_decay` is decoupled (w -= lr*wd*w after the update, outside momentum). The book's
recipes use torch.optim.SGD(weight_decay=wd), which adds wd*w to the gradient before momentum;
with momentum 0.9 the two differ by about 10x in effective strength, so the book's numbers need
the coupled form.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kcv")
class CoupledSGD(keras.optimizers.SGD):
    """keras.optimizers.SGD whose `l2` adds l2 * w to every gradient (all trainable weights).

    `offset_lr_scale` (k) multiplies the learning rate of every variable named `beta` (the offsets
    of Keras' and kcv's batch, layer and group norms) by k, but not its decay: its gradient becomes
    k * g + l2 * w (SGD with momentum is linear in the gradient, so this is k times the rate on the
    loss term; not with clipnorm, where the k-times gradient enters the norm). airbench's
    `bias_scaler` is 64, with the same per-step decay on biases as on weights. A model without
    such variables is trained as with k = 1.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2: float = 0.0,
                 offset_lr_scale: float = 1.0, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.l2 = float(l2)
        self.offset_lr_scale = float(offset_lr_scale)
        if not self.offset_lr_scale > 0:
            raise ValueError(f"CoupledSGD: offset_lr_scale must be > 0, got {offset_lr_scale!r}")

    def apply(self, grads, trainable_variables=None):
        if self.l2 or self.offset_lr_scale != 1.0:
            variables = trainable_variables if trainable_variables is not None else self._trainable_variables
            # Inside a replica step Keras sums the replicas' gradients after this: each replica adds
            # its share of the decay, so the sum carries l2 * w once (not once per replica).
            context = tf.distribute.get_replica_context()
            replicas = context.num_replicas_in_sync if context is not None else 1
            grads = [g if g is None else self._coupled(g, v, replicas) for g, v in zip(grads, variables)]
        return super().apply(grads, trainable_variables)

    def _coupled(self, g, v, replicas: int = 1):
        if self.offset_lr_scale != 1.0 and v.name == "beta":
            g = keras.ops.cast(self.offset_lr_scale, g.dtype) * g
        if self.l2:
            g = g + keras.ops.cast(self.l2 / replicas, g.dtype) * keras.ops.cast(v, g.dtype)
        return g

    def get_config(self):
        return {**super().get_config(), "l2": self.l2, "offset_lr_scale": self.offset_lr_scale}
