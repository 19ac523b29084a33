"""SGD with weight decay added to the gradient (L2), as PyTorch and MXNet apply it.

Keras' `weight_decay` is decoupled (w -= lr*wd*w after the update, outside momentum). The book's
recipes use torch.optim.SGD(weight_decay=wd), which adds wd*w to the gradient before momentum;
with momentum 0.9 the two differ by about 10x in effective strength, so the book's numbers need
the coupled form.
"""
from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="kcv")
class CoupledSGD(keras.optimizers.SGD):
    """keras.optimizers.SGD whose `l2` adds l2 * w to every gradient (all trainable weights)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2: float = 0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.l2 = float(l2)

    def apply(self, grads, trainable_variables=None):
        if self.l2:
            variables = trainable_variables if trainable_variables is not None else self._trainable_variables
            grads = [g if g is None else g + keras.ops.cast(self.l2, g.dtype) * keras.ops.cast(v, g.dtype)
                     for g, v in zip(grads, variables)]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}
