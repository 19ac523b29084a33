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


def _lookahead_by_hand(grads, lr, k, decay, total, w0=1.0):
    """airbench's loop on one weight, plain SGD: w -= lr * g; every k updates (and after the last)
    s <- a s + (1 - a) w, w <- s; a = decay^k (t / total)^3, the first sync copying w."""
    w, s, out = w0, None, []
    for t, g in enumerate(grads, start=1):
        w -= lr * g
        if t % k == 0:
            a = 0.0 if s is None else decay ** k * (t / total) ** 3
            s = w if s is None else a * s + (1 - a) * w
            w = s
        elif t == total:
            w = s
        out.append(w)
    return out


def test_lookahead_matches_airbench_by_hand():
    grads = [3.0, -1.0, 2.0, 0.5, -2.0, 1.0, 4.0]
    opt = CoupledSGD(learning_rate=0.1, lookahead_every=2, lookahead_decay=0.9, total_steps=7)
    w = keras.Variable(np.array([1.0], np.float32))
    got = []
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(np.array([g], np.float32))], [w])
        got.append(float(w.numpy()[0]))
    expected = _lookahead_by_hand(grads, 0.1, 2, 0.9, 7)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # by hand: t=2 w=0.8 (first sync: s=w); t=4 w=0.55, a=0.81*(4/7)^3=0.1511 -> s=0.5878;
    # t=6 w=0.6878, a=0.81*(6/7)^3=0.5101 -> s=0.6368; t=7 (last, not a multiple of 2): w <- s
    assert got[3] == pytest.approx(0.81 * (4 / 7) ** 3 * 0.8 + (1 - 0.81 * (4 / 7) ** 3) * 0.55, rel=1e-6)
    assert got[6] == pytest.approx(got[5], rel=1e-7)
    plain = CoupledSGD(learning_rate=0.1)
    v = keras.Variable(np.array([1.0], np.float32))
    for g in grads:
        plain.apply([keras.ops.convert_to_tensor(np.array([g], np.float32))], [v])
    assert float(v.numpy()[0]) == pytest.approx(1.0 - 0.1 * sum(grads), rel=1e-6)  # without: plain SGD


def test_lookahead_settings_are_checked_and_kept_in_the_config():
    with pytest.raises(ValueError, match="lookahead_every must be >= 0 and needs total_steps >= 1"):
        CoupledSGD(lookahead_every=5)
    with pytest.raises(ValueError, match=r"lookahead_decay must be in \[0, 1\)"):
        CoupledSGD(lookahead_every=5, total_steps=10, lookahead_decay=1.0)
    again = CoupledSGD.from_config(CoupledSGD(lookahead_every=5, total_steps=100, lookahead_decay=0.9).get_config())
    assert (again.lookahead_every, again.total_steps, again.lookahead_decay) == (5, 100, 0.9)
