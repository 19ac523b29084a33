"""Initializers that are not in Keras."""
from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="kcv")
class PartialIdentity(keras.initializers.Initializer):
    """A conv kernel (kh, kw, in, out) whose first min(in, out) filters pass their input channel
    through unchanged (1 at the kernel centre on channel i of filter i, 0 elsewhere) and whose
    other filters come from `base` (glorot_uniform by default): airbench's partial Dirac init, so
    each conv starts close to an identity on the channels it can keep."""

    def __init__(self, base="glorot_uniform"):
        self.base = keras.initializers.get(base)

    def __call__(self, shape, dtype=None):
        if len(shape) != 4 or shape[0] % 2 == 0 or shape[1] % 2 == 0:
            raise ValueError(f"PartialIdentity: needs an odd-sized conv kernel (kh, kw, in, out), got {tuple(shape)}")
        kernel = np.array(keras.ops.convert_to_numpy(self.base(shape, dtype="float32")))
        kh, kw, cin, cout = (int(s) for s in shape)
        keep = min(cin, cout)
        kernel[..., :keep] = 0.0
        kernel[kh // 2, kw // 2, np.arange(keep), np.arange(keep)] = 1.0
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {"base": keras.initializers.serialize(self.base)}
