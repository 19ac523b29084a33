"""CoupledSGD: weight decay added to the gradient before momentum, as torch.optim.SGD does."""
import keras
import numpy as np
import pytest

from kcv.optim.coupled_decay import CoupledSGD


def _two_steps(optimizer, grad=3.0, w0=1.0):
    w = keras.Variable(np.array([w0], np.float32))
    out = []
    for _ in range(2):
        optimizer.apply([keras.ops.convert_to_tensor(np.array([grad], np.float32))], [w])
        out.append(float(w.numpy()[0]))
    return out


def test_two_steps_match_torch_sgd_by_hand():
    # torch: d = g + wd*w; buf = d, then buf = m*buf + d; w -= lr*buf. lr 0.1, m 0.9, wd 0.5, g 3, w0 1:
    # step 1: d1 = 3 + 0.5*1 = 3.5;     w1 = 1 - 0.1*3.5 = 0.65
    # step 2: d2 = 3 + 0.5*0.65 = 3.325; buf = 0.9*3.5 + 3.325 = 6.475; w2 = 0.65 - 0.6475 = 0.0025
    assert _two_steps(CoupledSGD(learning_rate=0.1, momentum=0.9, l2=0.5)) == pytest.approx([0.65, 0.0025], abs=1e-6)


def test_differs_from_keras_decoupled_decay_and_equals_sgd_without_it():
    # Keras' decoupled weight_decay shrinks w by lr*wd*w outside the momentum: another trajectory.
    decoupled = _two_steps(keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.5))
    assert decoupled[1] != pytest.approx(0.0025, abs=1e-3)
    # l2 = 0: plain SGD with momentum, w1 = 1 - 0.3 = 0.7, w2 = 0.7 - 0.1*(0.9*3 + 3) = 0.13
    assert _two_steps(CoupledSGD(learning_rate=0.1, momentum=0.9)) == pytest.approx([0.7, 0.13], abs=1e-6)


def test_config_round_trip_keeps_l2():
    opt = CoupledSGD(learning_rate=0.05, momentum=0.9, l2=1.5625e-5)
    again = CoupledSGD.from_config(opt.get_config())
    assert again.l2 == 1.5625e-5 and again.momentum == 0.9
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(opt)).l2 == 1.5625e-5


def test_offset_lr_scale_multiplies_the_loss_gradient_of_beta_only():
    # lr 0.1, no momentum, l2 0.5, g 3, w0 1, scale 64: beta moves by 0.1 * (64*3 + 0.5*1) = 19.25,
    # any other variable by 0.1 * (3 + 0.5) = 0.35 (the decay is not scaled).
    opt = CoupledSGD(learning_rate=0.1, l2=0.5, offset_lr_scale=64.0)
    beta = keras.Variable(np.array([1.0], np.float32), name="beta")
    kernel = keras.Variable(np.array([1.0], np.float32), name="kernel")
    g = keras.ops.convert_to_tensor(np.array([3.0], np.float32))
    opt.apply([g, g], [beta, kernel])
    assert float(beta.numpy()[0]) == pytest.approx(1 - 19.25, abs=1e-5)
    assert float(kernel.numpy()[0]) == pytest.approx(0.65, abs=1e-6)
    assert CoupledSGD.from_config(opt.get_config()).offset_lr_scale == 64.0
    with pytest.raises(ValueError, match="offset_lr_scale must be > 0"):
        CoupledSGD(offset_lr_scale=0.0)
