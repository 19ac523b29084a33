"""Learning-rate schedules: hand-checked values, the book's curves, tf.function, serialisation."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.optim import schedules
from kcv.optim.schedules import build_schedule, parse_schedule_spec


def values(schedule, steps):
    return [float(schedule(s)) for s in steps]


def test_constant():
    assert values(build_schedule("constant", 0.3, 1), [0, 7, 1000]) == pytest.approx([0.3] * 3)


def test_step_lr_kaggle():
    # Kaggle CIFAR-10: lr_period 4, lr_decay 0.9, lr 0.02 (mx). Epoch 4 -> 0.02·0.9, epoch 19 -> 0.02·0.9^4.
    s = build_schedule("step", 0.02, 10, lr_period=4, lr_decay=0.9)
    # steps_per_epoch 10: step 39 is epoch 3, step 40 epoch 4, step 199 epoch 19
    assert values(s, [0, 39, 40, 199]) == pytest.approx([0.02, 0.02, 0.018, 0.02 * 0.9**4], rel=1e-6)


def test_factor_scheduler_book_curve():
    # FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0): 2·0.9^e until it hits 0.01.
    s = build_schedule("factor", 2.0, 1, factor=0.9, stop_factor_lr=1e-2)
    # 2·0.9^49 = 0.011452, 2·0.9^50 = 0.010307, 2·0.9^51 = 0.009276 -> clamped to 0.01
    assert values(s, [0, 1, 49, 50, 51, 100]) == pytest.approx(
        [2.0, 1.8, 2 * 0.9**49, 2 * 0.9**50, 0.01, 0.01], rel=1e-5)


def test_multistep_book():
    # MultiStepLR(lr 0.5, milestones [15, 30], gamma 0.5)
    s = build_schedule("multistep", 0.5, 1, milestones=[15, 30], gamma=0.5)
    assert values(s, [0, 14, 15, 29, 30, 40]) == [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]


def test_cosine_book_no_warmup():
    # CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01):
    # epoch 10: 0.01 + 0.29·(1 + cos(π/2))/2 = 0.155; epoch 5: 0.01 + 0.145·(1 + cos(π/4)) = 0.257530
    s = build_schedule("cosine", 0.3, 1, max_update=20, final_lr=0.01)
    expected = [0.3, 0.01 + 0.145 * (1 + math.cos(math.pi / 4)), 0.155, 0.01, 0.01]
    assert values(s, [0, 5, 10, 20, 29]) == pytest.approx(expected, rel=1e-6)


def test_cosine_book_with_warmup():
    # warm-up 5 from 0: epoch e < 5 gives 0.3·e/5; then cosine over the remaining 15 epochs.
    # epoch 1 = 0.06 (the book's quirk: pt trains epoch 1 at scheduler(0) = 0); epoch 5 = 0.3;
    # epoch 10: 0.01 + 0.145·(1 + cos(π·5/15)) = 0.01 + 0.145·1.5 = 0.2275
    s = build_schedule("cosine", 0.3, 1, max_update=20, final_lr=0.01, warmup_steps=5)
    assert values(s, [0, 1, 4, 5, 10, 20, 25]) == pytest.approx(
        [0.0, 0.06, 0.24, 0.3, 0.2275, 0.01, 0.01], rel=1e-6, abs=1e-7)


def test_cosine_warmup_begin_lr():
    # warmup_begin_lr 0.1 -> 0.3 over 4 epochs: epoch 2 = 0.1 + 0.2·2/4 = 0.2
    s = build_schedule("cosine", 0.3, 1, max_update=10, warmup_steps=4, warmup_begin_lr=0.1)
    assert float(s(2)) == pytest.approx(0.2)


def test_exponential_and_poly():
    # exponential: 0.1·exp(-0.1·e); poly default is the square-root schedule 0.1·(e+1)^-0.5
    e = build_schedule("exponential", 0.1, 1, decay_rate=0.1)
    assert values(e, [0, 2, 10]) == pytest.approx([0.1, 0.1 * math.exp(-0.2), 0.1 * math.exp(-1)], rel=1e-6)
    p = build_schedule("poly", 0.1, 1)
    assert values(p, [0, 3, 8]) == pytest.approx([0.1, 0.05, 0.1 / 3], rel=1e-6)  # (1+3)^-.5 = .5, 9^-.5 = 1/3
    # sgd.md's polynomial factor (1 + 0.1t)^-0.5 at t = 2 is 1.2^-0.5
    q = build_schedule("poly", 1.0, 1, alpha=0.5, beta=0.1)
    assert float(q(2)) == pytest.approx(1.2**-0.5, rel=1e-6)


def test_steps_per_epoch_converts_by_integer_division():
    s = build_schedule("multistep", 1.0, 100, milestones=[2], gamma=0.1)
    assert values(s, [0, 199, 200, 299]) == pytest.approx([1.0, 1.0, 0.1, 0.1])


@pytest.mark.parametrize("dtype", [tf.int64, tf.int32])
@pytest.mark.parametrize(
    "name, params",
    [("constant", {}), ("step", {"lr_period": 2, "lr_decay": 0.5}), ("factor", {"factor": 0.5}),
     ("multistep", {"milestones": [1, 3]}), ("cosine", {"max_update": 4, "warmup_steps": 1}),
     ("exponential", {"decay_rate": 0.3}), ("poly", {"alpha": 1.0})],
)
def test_inside_tf_function_equals_eager(name, params, dtype):
    s = build_schedule(name, 0.4, 3, **params)
    graph = tf.function(lambda step: s(step))
    for step in [0, 2, 3, 7, 12, 40]:
        out = graph(tf.constant(step, dtype))
        assert out.dtype == tf.float32 and out.shape == ()
        assert float(out) == pytest.approx(float(s(step)), rel=1e-6)


@pytest.mark.parametrize(
    "name, params",
    [("constant", {}), ("step", {"lr_period": 4, "lr_decay": 0.9}),
     ("factor", {"factor": 0.9, "stop_factor_lr": 0.01}), ("multistep", {"milestones": [15, 30], "gamma": 0.5}),
     ("cosine", {"max_update": 20, "final_lr": 0.01, "warmup_steps": 5, "warmup_begin_lr": 0.001}),
     ("exponential", {"decay_rate": 0.1}), ("poly", {"alpha": 0.5, "beta": 0.1})],
)
def test_config_round_trip(name, params):
    s = build_schedule(name, 0.3, 7, **params)
    config = s.get_config()
    assert config["steps_per_epoch"] == 7 and config["base_lr"] == 0.3
    assert {k: config[k] for k in params} == params
    again = type(s).from_config(config)
    assert again.get_config() == config
    # Through Keras serialisation (registered as kcv>ClassName) and through an optimizer.
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert type(restored) is type(s) and restored.get_config() == config
    opt = keras.optimizers.SGD.from_config(keras.optimizers.SGD(learning_rate=s).get_config())
    assert type(opt._learning_rate) is type(s)
    steps = [0, 6, 7, 100, 200]
    assert values(restored, steps) == values(s, steps)


def test_registered_names():
    assert keras.saving.get_registered_name(schedules.CosineScheduler) == "kcv>CosineScheduler"


def test_optimizer_uses_schedule_during_fit():
    s = build_schedule("multistep", 0.5, 2, milestones=[1], gamma=0.1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    opt = keras.optimizers.SGD(learning_rate=s)
    model.compile(optimizer=opt, loss="mse")
    model.fit(np.zeros((8, 2)), np.zeros((8, 1)), batch_size=2, epochs=1, verbose=0)  # 4 steps = 2 epochs
    assert int(opt.iterations) == 4
    assert float(opt.learning_rate) == pytest.approx(0.05)  # step 4 is epoch 2 >= milestone 1


def test_unknown_name_and_params():
    with pytest.raises(ValueError, match=r"^unknown learning-rate schedule 'linear'; valid: constant, step, "
                                         r"factor, multistep, cosine, exponential, poly, triangular$"):
        build_schedule("linear", 0.1, 1)
    with pytest.raises(ValueError, match=r"^unknown parameter\(s\) decay for schedule 'step'; valid: lr_period, lr_decay$"):
        build_schedule("step", 0.1, 1, lr_period=2, lr_decay=0.5, decay=3)
    with pytest.raises(ValueError, match=r"^unknown parameter\(s\) gamma for schedule 'constant'; valid: none$"):
        build_schedule("constant", 0.1, 1, gamma=3)
    with pytest.raises(ValueError, match=r"^schedule 'cosine' needs parameter\(s\) max_update; valid: "):
        build_schedule("cosine", 0.1, 1)


@pytest.mark.parametrize(
    "name, base_lr, spe, params, message",
    [("constant", 0.1, 0, {}, "steps_per_epoch must be an integer >= 1"),
     ("constant", -0.1, 1, {}, "base_lr must be a finite number >= 0"),
     ("step", 0.1, 1, {"lr_period": 0, "lr_decay": 0.5}, "lr_period must be an integer >= 1"),
     ("multistep", 0.1, 1, {"milestones": [30, 15]}, "milestones must be a non-empty increasing list"),
     ("cosine", 0.1, 1, {"max_update": 5, "warmup_steps": 5}, r"max_update \(5\) must be greater than warmup_steps \(5\)"),
     ("factor", 0.1, 1, {"factor": 0.0}, "factor must be a finite number > 0")],
)
def test_bad_values(name, base_lr, spe, params, message):
    with pytest.raises(ValueError, match=message):
        build_schedule(name, base_lr, spe, **params)


def test_parse_schedule_spec():
    assert parse_schedule_spec("cosine:max_update=20,final_lr=0.01,warmup_steps=5") == (
        "cosine", {"max_update": 20, "final_lr": 0.01, "warmup_steps": 5})
    assert parse_schedule_spec("multistep:milestones=15/30,gamma=0.5") == (
        "multistep", {"milestones": [15, 30], "gamma": 0.5})
    assert parse_schedule_spec("constant") == ("constant", {})
    name, params = parse_schedule_spec("multistep:milestones=15/30,gamma=0.5")
    assert float(build_schedule(name, 0.5, 1, **params)(30)) == 0.125
    with pytest.raises(ValueError, match="expected key=value"):
        parse_schedule_spec("step:lr_period")
    with pytest.raises(ValueError, match="expected a number"):
        parse_schedule_spec("step:lr_period=four")
