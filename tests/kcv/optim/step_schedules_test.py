"""Per-step schedules (NAME_steps): counted in optimizer updates, as Keras' own schedules are."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.optim import schedules
from kcv.optim.schedules import build_schedule, parse_schedule_spec, schedule_unit


def values(schedule, steps):
    return [float(schedule(s)) for s in steps]


def test_per_step_warmup_by_hand():
    # constant_steps:warmup_steps=100, lr 0.1: update k < 100 runs at 0.1·k/100, then 0.1.
    s = build_schedule("constant_steps", 0.1, 391, warmup_steps=100)
    assert values(s, [0, 1, 50, 99, 100, 391, 10_000]) == pytest.approx(
        [0.0, 0.001, 0.05, 0.099, 0.1, 0.1, 0.1], rel=1e-6, abs=1e-9)
    # from warmup_begin_lr 0.01: update 50 = 0.01 + (0.1 - 0.01)·50/100 = 0.055
    s = build_schedule("constant_steps", 0.1, 391, warmup_steps=100, warmup_begin_lr=0.01)
    assert values(s, [0, 50, 100]) == pytest.approx([0.01, 0.055, 0.1], rel=1e-6)


def test_steps_per_epoch_does_not_matter_per_step():
    a = build_schedule("cosine_steps", 0.3, 1, max_update=200, final_lr=0.01, warmup_steps=20)
    b = build_schedule("cosine_steps", 0.3, 391, max_update=200, final_lr=0.01, warmup_steps=20)
    steps = [0, 10, 20, 110, 200, 500]
    assert values(a, steps) == values(b, steps)
    # the midpoint of warm-up (0.15), of the cosine: step 110 = 0.01 + 0.29·(1 + cos(π/2))/2 = 0.155
    assert values(a, [10, 110, 200]) == pytest.approx([0.15, 0.155, 0.01], rel=1e-6)


def test_issue_19_warmup_of_one_is_one_update_not_one_epoch():
    # The book's per-epoch cosine with warmup_steps=1 and 10 steps per epoch: the whole first epoch at 0.
    epoch = build_schedule("cosine", 0.3, 10, max_update=20, final_lr=0.01, warmup_steps=1)
    assert values(epoch, range(10)) == [0.0] * 10 and float(epoch(10)) == pytest.approx(0.3)
    step = build_schedule("cosine_steps", 0.3, 10, max_update=20, final_lr=0.01, warmup_steps=1)
    assert float(step(0)) == 0.0 and float(step(1)) == pytest.approx(0.3)


@pytest.mark.parametrize("warmup", [0, 20])
def test_cosine_steps_equals_keras_cosine_decay(warmup):
    ours = build_schedule("cosine_steps", 0.3, 7, max_update=200, final_lr=0.01, warmup_steps=warmup)
    keras_schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else 0.3, 200 - warmup, alpha=0.01 / 0.3, warmup_target=0.3 if warmup else None,
        warmup_steps=warmup)
    steps = list(range(0, 260, 3))
    np.testing.assert_allclose(values(ours, steps), values(keras_schedule, steps), rtol=1e-5, atol=1e-7)


def test_time_parameters_count_updates():
    # multistep_steps: milestones 100 and 200 are updates; gamma 0.5
    m = build_schedule("multistep_steps", 0.5, 50, milestones=[100, 200], gamma=0.5)
    assert values(m, [0, 99, 100, 199, 200]) == [0.5, 0.5, 0.25, 0.25, 0.125]
    # step_steps: every 30 updates x0.9
    s = build_schedule("step_steps", 0.02, 50, lr_period=30, lr_decay=0.9)
    assert values(s, [29, 30, 60]) == pytest.approx([0.02, 0.018, 0.02 * 0.81], rel=1e-6)


def test_wrapped_warmup_ramps_to_the_schedules_value_when_it_ends():
    # exponential_steps 0.1·exp(-0.01k) with 10 warm-up updates: the ramp ends at 0.1·exp(-0.1)
    e = build_schedule("exponential_steps", 0.1, 1, decay_rate=0.01, warmup_steps=10)
    end = 0.1 * math.exp(-0.1)
    assert values(e, [0, 5, 10, 11]) == pytest.approx([0.0, end / 2, end, 0.1 * math.exp(-0.11)], rel=1e-6)
    # no warm-up: exactly the epoch schedule with steps_per_epoch=1
    plain = build_schedule("exponential_steps", 0.1, 391, decay_rate=0.01)
    book = build_schedule("exponential", 0.1, 1, decay_rate=0.01)
    assert values(plain, range(0, 50, 7)) == values(book, range(0, 50, 7))


def test_optimizer_updates_use_the_per_step_rates():
    # SGD, gradient 1, constant_steps warm-up of 4 from 0 to 0.1: updates at 0, 0.025, 0.05, 0.075, 0.1
    opt = keras.optimizers.SGD(learning_rate=build_schedule("constant_steps", 0.1, 100, warmup_steps=4))
    w = keras.Variable(np.array([1.0], np.float32))
    for _ in range(5):
        opt.apply([keras.ops.convert_to_tensor(np.array([1.0], np.float32))], [w])
    assert float(w.numpy()[0]) == pytest.approx(1.0 - 0.25, abs=1e-6)
    assert int(opt.iterations) == 5 and float(opt.learning_rate) == pytest.approx(0.1)


@pytest.mark.parametrize("dtype", [tf.int64, tf.int32])
@pytest.mark.parametrize("name, params", [
    ("constant_steps", {"warmup_steps": 3}), ("cosine_steps", {"max_update": 30, "warmup_steps": 5}),
    ("multistep_steps", {"milestones": [4, 9], "warmup_steps": 2}), ("poly_steps", {})])
def test_per_step_inside_tf_function_equals_eager(name, params, dtype):
    s = build_schedule(name, 0.4, 3, **params)
    graph = tf.function(lambda step: s(step))
    for step in [0, 1, 2, 3, 7, 40]:
        out = graph(tf.constant(step, dtype))
        assert out.dtype == tf.float32 and out.shape == ()
        assert float(out) == pytest.approx(float(s(step)), rel=1e-6)


@pytest.mark.parametrize("name, params", [
    ("constant_steps", {"warmup_steps": 100, "warmup_begin_lr": 0.001}),
    ("cosine_steps", {"max_update": 5000, "final_lr": 0.01, "warmup_steps": 500}),
    ("multistep_steps", {"milestones": [100, 300], "gamma": 0.5, "warmup_steps": 10})])
def test_per_step_config_round_trip(name, params):
    s = build_schedule(name, 0.3, 7, **params)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert type(restored) is schedules.PerStepSchedule and restored.get_config() == s.get_config()
    opt = keras.optimizers.SGD.from_config(keras.optimizers.SGD(learning_rate=s).get_config())
    steps = [0, 5, 50, 150, 499, 500, 4000, 6000]
    assert values(opt._learning_rate, steps) == values(s, steps) == values(restored, steps)


def test_units_names_and_messages():
    assert schedule_unit("cosine") == "epoch" and schedule_unit("cosine_steps") == "step"
    assert schedule_unit("step") == "epoch" and schedule_unit("step_steps") == "step"
    assert schedules.CosineScheduler.unit == "epoch" and schedules.PerStepSchedule.unit == "step"
    with pytest.raises(ValueError, match=r"^unknown learning-rate schedule 'linear_steps'; valid: constant, "):
        build_schedule("linear_steps", 0.1, 1)
    with pytest.raises(ValueError, match=r"^unknown parameter\(s\) decay for schedule 'step_steps'; valid: "
                                         r"lr_period, lr_decay, warmup_steps, warmup_begin_lr$"):
        build_schedule("step_steps", 0.1, 1, lr_period=2, lr_decay=0.5, decay=3)
    with pytest.raises(ValueError, match=r"^schedule 'cosine_steps' needs parameter\(s\) max_update; valid: "
                                         r"max_update, final_lr, warmup_steps, warmup_begin_lr$"):
        build_schedule("cosine_steps", 0.1, 1)
    with pytest.raises(ValueError, match="warmup_steps must be an integer >= 0"):
        build_schedule("constant_steps", 0.1, 1, warmup_steps=-1)
    with pytest.raises(ValueError, match=r"max_update \(5\) must be greater than warmup_steps \(5\)"):
        build_schedule("cosine_steps", 0.1, 1, max_update=5, warmup_steps=5)
    with pytest.raises(ValueError, match="steps_per_epoch must be an integer >= 1"):
        build_schedule("constant_steps", 0.1, 0)
    name, params = parse_schedule_spec("cosine_steps:max_update=5000,final_lr=0.01,warmup_steps=500")
    assert float(build_schedule(name, 0.2, 391, **params)(250)) == pytest.approx(0.1)


def test_triangular_moves_every_update_on_fractional_epochs():
    # ResNet-9's shape: 0 -> 0.4 over 2 epochs, down to 0 at epoch 10; 4 updates an epoch.
    s = build_schedule("triangular", 0.4, 4, max_update=10, warmup_steps=2)
    assert schedule_unit("triangular") == "epoch"
    # update k runs at epoch k/4: 0.2 epochs per half-step of the ramp
    assert values(s, [0, 1, 2, 4, 8, 12, 24, 40, 41, 100]) == pytest.approx(
        [0.0, 0.05, 0.1, 0.2, 0.4, 0.35, 0.2, 0.0, 0.0, 0.0], abs=1e-6)
    per_step = build_schedule("triangular_steps", 0.4, 4, max_update=40, warmup_steps=8)
    assert values(per_step, [0, 1, 2, 4, 8, 12, 24, 40]) == pytest.approx(values(s, [0, 1, 2, 4, 8, 12, 24, 40]))
    no_warmup = build_schedule("triangular", 1.0, 1, max_update=4, final_lr=0.2, warmup_steps=0)
    assert values(no_warmup, [0, 2, 4, 9]) == pytest.approx([1.0, 0.6, 0.2, 0.2])
    half_epoch = build_schedule("triangular", 1.0, 10, max_update=2.5, warmup_steps=0.5)
    assert values(half_epoch, [0, 5, 15, 25]) == pytest.approx([0.0, 1.0, 0.5, 0.0], abs=1e-6)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert type(restored) is schedules.TriangularLR and values(restored, [3, 17]) == values(s, [3, 17])
    with pytest.raises(ValueError, match=r"max_update \(2\) must be greater than warmup_steps \(2\)"):
        build_schedule("triangular", 0.1, 1, max_update=2, warmup_steps=2)
    with pytest.raises(ValueError, match=r"schedule 'triangular' needs parameter\(s\) max_update"):
        build_schedule("triangular", 0.1, 1)
