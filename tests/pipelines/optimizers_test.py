"""pipelines.optimizers: --lr_schedule specs from the config, per epoch and per step."""
import dataclasses

import pytest

from pipelines import config
from pipelines.artifacts import PipelineError
from pipelines.optimizers import learning_rate, make_optimizer


def training(**kw):
    return dataclasses.replace(config.TrainingConfig(), **kw)


def _check(value):
    field = {f.name: f for f in dataclasses.fields(config.TrainingConfig)}["lr_schedule"]
    return field.metadata["check"](value)


def test_epoch_and_step_specs_from_the_config():
    # per epoch (the book's): 10 steps per epoch, the warm-up epoch runs at 0 for all its 10 updates
    t = training(lr=0.3, lr_schedule="cosine:max_update=20,final_lr=0.01,warmup_steps=1")
    s = learning_rate(t, steps_per_epoch=10)
    assert float(s(9)) == 0.0 and float(s(10)) == pytest.approx(0.3)
    # per step: the warm-up is one update
    t = training(lr=0.3, lr_schedule="cosine_steps:max_update=200,final_lr=0.01,warmup_steps=1")
    s = learning_rate(t, steps_per_epoch=10)
    assert float(s(0)) == 0.0 and float(s(1)) == pytest.approx(0.3)
    # a plain per-step warm-up to --lr: 0 at update 0, half way at 50, --lr from update 100
    s = learning_rate(training(lr=0.1, lr_schedule="constant_steps:warmup_steps=100"), steps_per_epoch=7)
    assert [float(s(k)) for k in (0, 50, 100, 700)] == pytest.approx([0.0, 0.05, 0.1, 0.1])
    opt = make_optimizer(training(lr=0.1, lr_schedule="constant_steps:warmup_steps=100", momentum=0.9), 7)
    assert float(opt._learning_rate(50)) == pytest.approx(0.05)


def test_lr_period_fills_only_the_per_epoch_step_schedule():
    s = learning_rate(training(lr=0.02, lr_schedule="step", lr_period=4, lr_decay=0.9), steps_per_epoch=10)
    assert float(s(40)) == pytest.approx(0.018)  # epoch 4
    with pytest.raises(PipelineError, match=r"^--lr_schedule: schedule 'step_steps' needs parameter\(s\) "
                                            r"lr_period, lr_decay"):
        learning_rate(training(lr_schedule="step_steps", lr_period=4, lr_decay=0.9), steps_per_epoch=10)
    s = learning_rate(training(lr=0.02, lr_schedule="step_steps:lr_period=40,lr_decay=0.9"), steps_per_epoch=10)
    assert float(s(40)) == pytest.approx(0.018)


@pytest.mark.parametrize("name", config.LR_SCHEDULES)
def test_config_check_and_factory_agree(name):
    from kcv.optim.schedules import SCHEDULES
    assert name in SCHEDULES
    for spec in (name, f"{name}_steps"):
        assert _check(f"{spec}:x=1") is None
    assert "unknown schedule" in _check(f"{name}_step")
    assert "unknown schedule" in _check(f"{name}_epochs")


def test_help_names_the_unit():
    field = {f.name: f for f in dataclasses.fields(config.TrainingConfig)}["lr_schedule"]
    text = field.metadata["help"]
    assert "Counted in epochs" in text and "Counted in optimizer steps" in text and "_steps" in text
