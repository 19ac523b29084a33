"""Optimizers and learning-rate schedules from the training config, shared by every task."""
from __future__ import annotations

import keras

from kcv.optim.coupled_decay import CoupledSGD
from kcv.optim.schedules import build_schedule, parse_schedule_spec
from pipelines.artifacts import PipelineError


# Schedule parameters that are learning rates, not factors or times: they scale with base_lr.
ABSOLUTE_LR_PARAMS = ("final_lr", "warmup_begin_lr", "stop_factor_lr")


def learning_rate(training, steps_per_epoch: int, base_lr: float | None = None):
    """--lr_schedule (with --lr_period/--lr_decay for `step`) as a Keras schedule; `training` is a TrainingConfig.

    base_lr: start from this rate instead of --lr, the whole schedule scaled by base_lr / --lr
    (its absolute rates such as cosine's final_lr too), e.g. a GAN discriminator's --d_lr.

    The book's names count epochs (the optimizer's step // steps_per_epoch); NAME_steps counts
    optimizer updates and ignores steps_per_epoch. --lr_period is in epochs, so it fills only the
    per-epoch `step`; `step_steps` takes lr_period (in updates) and lr_decay in the spec itself.
    """
    name, params = parse_schedule_spec(training.lr_schedule)
    if name == "step":
        params = {"lr_period": training.lr_period, "lr_decay": training.lr_decay, **params}
    if base_lr is not None:
        ratio = base_lr / training.lr
        params = {k: v * ratio if k in ABSOLUTE_LR_PARAMS else v for k, v in params.items()}
    try:
        return build_schedule(name, training.lr if base_lr is None else base_lr, steps_per_epoch, **params)
    except ValueError as err:
        raise PipelineError(f"--lr_schedule: {err}") from None


def make_optimizer(training, steps_per_epoch: int):
    """--optimizer with --lr/--lr_schedule, --momentum (--nesterov), --weight_decay, --offset_lr_scale
    and --lookahead_every/--lookahead_decay (over the run's epochs * steps_per_epoch updates)."""
    schedule = learning_rate(training, steps_per_epoch)
    if training.optimizer == "sgd":
        return CoupledSGD(learning_rate=schedule, momentum=training.momentum, nesterov=training.nesterov,
                          l2=training.weight_decay, offset_lr_scale=training.offset_lr_scale,
                          lookahead_every=training.lookahead_every, lookahead_decay=training.lookahead_decay,
                          total_steps=training.epochs * steps_per_epoch)
    # Adam: torch-style L2 is not what people expect from Adam; use Keras' decoupled decay (AdamW).
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=training.weight_decay) \
        if training.weight_decay else keras.optimizers.Adam(learning_rate=schedule)
