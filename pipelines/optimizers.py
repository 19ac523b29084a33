"""Optimizers and learning-rate schedules from the config, shared by every task."""
from __future__ import annotations

import keras

from kcv.optim.coupled_decay import CoupledSGD
from kcv.optim.schedules import build_schedule, parse_schedule_spec
from pipelines.artifacts import PipelineError


def learning_rate(cfg, steps_per_epoch: int, base_lr: float | None = None):
    """The --lr_schedule (with --lr_period/--lr_decay for `step`) as a Keras schedule."""
    name, params = parse_schedule_spec(cfg.lr_schedule)
    if name == "step":
        params = {"lr_period": cfg.lr_period, "lr_decay": cfg.lr_decay, **params}
    try:
        return build_schedule(name, cfg.lr if base_lr is None else base_lr, steps_per_epoch, **params)
    except ValueError as err:
        raise PipelineError(f"--lr_schedule: {err}") from None


def make_optimizer(cfg, steps_per_epoch: int):
    """--optimizer with --lr/--lr_schedule, --momentum and --weight_decay."""
    schedule = learning_rate(cfg, steps_per_epoch)
    if cfg.optimizer == "sgd":
        return CoupledSGD(learning_rate=schedule, momentum=cfg.momentum, l2=cfg.weight_decay)
    # Adam: torch-style L2 is not what people expect from Adam; use Keras' decoupled decay (AdamW).
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay) if cfg.weight_decay \
        else keras.optimizers.Adam(learning_rate=schedule)
