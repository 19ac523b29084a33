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

    `lookahead_every` (k > 0) adds airbench's Lookahead (Zhang et al. 2019, with a ramped rate):
    a slow copy s of every trained weight; after update t, when t is a multiple of k,
    s <- a_t * s + (1 - a_t) * w and then w <- s, with a_t = lookahead_decay^k * (t / total_steps)^3
    (so no averaging early, and the weights of the last steps averaged over about 1 / (1 - 0.95)
    updates at the end); the first such update sets s = w; after the last update (t = total_steps)
    w <- s (the final weights are the slow ones). The slow copies are optimizer variables, so
    checkpoints carry them. BatchNorm statistics are not averaged (they are not trained).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2: float = 0.0,
                 offset_lr_scale: float = 1.0, lookahead_every: int = 0, lookahead_decay: float = 0.95,
                 total_steps: int = 0, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.l2 = float(l2)
        self.offset_lr_scale = float(offset_lr_scale)
        self.lookahead_every = int(lookahead_every)
        self.lookahead_decay = float(lookahead_decay)
        self.total_steps = int(total_steps)
        if not self.offset_lr_scale > 0:
            raise ValueError(f"CoupledSGD: offset_lr_scale must be > 0, got {offset_lr_scale!r}")
        if self.lookahead_every < 0 or (self.lookahead_every and self.total_steps < 1):
            raise ValueError(f"CoupledSGD: lookahead_every must be >= 0 and needs total_steps >= 1, got "
                             f"{lookahead_every!r}, {total_steps!r}")
        if not 0.0 <= self.lookahead_decay < 1.0:
            raise ValueError(f"CoupledSGD: lookahead_decay must be in [0, 1), got {lookahead_decay!r}")

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slow = self.add_optimizer_variables(variables, "lookahead") if self.lookahead_every else []

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate)
        if not self.lookahead_every:
            return
        slow = self._slow[self._get_variable_index(variable)]
        k, total = self.lookahead_every, self.total_steps
        t = self.iterations + 1  # the update just applied (iterations counts after all variables)
        last = keras.ops.equal(t, total)
        synced = keras.ops.logical_or(keras.ops.equal(t % k, 0), last)
        frac = keras.ops.cast(keras.ops.minimum(t, total), "float32") / float(total)
        alpha = (self.lookahead_decay ** k) * frac ** 3
        alpha = keras.ops.where(keras.ops.logical_and(last, keras.ops.not_equal(t % k, 0)), 1.0, alpha)
        alpha = keras.ops.where(keras.ops.less_equal(t, k), 0.0, alpha)  # the first sync copies w
        on = keras.ops.cast(synced, variable.dtype)
        step = on * (1.0 - keras.ops.cast(alpha, variable.dtype))
        new_slow = slow + step * (variable - slow)
        self.assign(slow, new_slow)
        self.assign(variable, on * new_slow + (1.0 - on) * variable)

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
        return {**super().get_config(), "l2": self.l2, "offset_lr_scale": self.offset_lr_scale,
                "lookahead_every": self.lookahead_every, "lookahead_decay": self.lookahead_decay,
                "total_steps": self.total_steps}
