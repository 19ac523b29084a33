"""Optimizers and learning-rate schedules from the training config, shared by every task."""
from __future__ import annotations

import keras

from kcv.optim.coupled_decay import CoupledSGD
from kcv.optim.schedules import build_schedule, parse_schedule_spec
from pipelines.artifacts import PipelineError


def learning_rate(training, steps_per_epoch: int, base_lr: float | None = None):
    """--lr_schedule (with --lr_period/--lr_decay for `step`) as a Keras schedule; `training` is a TrainingConfig.

    The book's names count epochs (the optimizer's step // steps_per_epoch); NAME_steps counts
    optimizer updates and ignores steps_per_epoch. --lr_period is in epochs, so it fills only the
    per-epoch `step`; `step_steps` takes lr_period (in updates) and lr_decay in the spec itself.
    """
    name, params = parse_schedule_spec(training.lr_schedule)
    if name == "step":
        params = {"lr_period": training.lr_period, "lr_decay": training.lr_decay, **params}
    try:
        return build_schedule(name, training.lr if base_lr is None else base_lr, steps_per_epoch, **params)
    except ValueError as err:
        raise PipelineError(f"--lr_schedule: {err}") from None


def make_optimizer(training, steps_per_epoch: int):
    """--optimizer with --lr/--lr_schedule, --momentum and --weight_decay."""
    schedule = learning_rate(training, steps_per_epoch)
    if training.optimizer == "sgd":
        return CoupledSGD(learning_rate=schedule, momentum=training.momentum, l2=training.weight_decay)
    # Adam: torch-style L2 is not what people expect from Adam; use Keras' decoupled decay (AdamW).
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=training.weight_decay) \
        if training.weight_decay else keras.optimizers.Adam(learning_rate=schedule)
