"""Learning-rate schedules from lr-scheduler.md (and the Kaggle chapters) as Keras schedules.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule`: pass it as an optimizer's
`learning_rate`, and Keras calls it with the optimizer's int64 iteration count inside tf.function.

The book changes the learning rate once per *epoch*, so the book's schedules are written in epochs
(`unit = "epoch"`): `epoch = step // steps_per_epoch` (integer division) and the rate is constant
within an epoch. One exception, `triangular` (the fast CIFAR-10 recipes' ramp up and down): its
times are in epochs too, but it is evaluated at the fractional epoch step / steps_per_epoch, so it
moves on every update. With the default `steps_per_epoch=1` such a schedule runs per step. Values are float32.

Per-step schedules: every name also exists as `NAME_steps` (`unit = "step"`, class PerStepSchedule),
the same formula counted in optimizer updates, as Keras' own LearningRateSchedules count: update k
(0-based) runs at `schedule(k)` whatever the epoch length, and every time parameter (lr_period,
milestones, max_update, warmup_steps) is a number of updates. `NAME_steps` also takes
`warmup_steps`/`warmup_begin_lr`: a linear ramp over the first warmup_steps updates from
warmup_begin_lr to the schedule's value at update warmup_steps (`constant_steps:warmup_steps=500` is a
plain warm-up to --lr). Why: `cosine:...,warmup_steps=1` holds the rate at warmup_begin_lr (0) for
the whole first *epoch*; `cosine_steps:...,warmup_steps=1` does so for one update, as
keras.optimizers.schedules.CosineDecay(warmup_steps=1) does.

Stateless versions of the book's stateful schedulers:
- FactorScheduler: the book multiplies a stored rate on every call, and `train()` applies
  `scheduler(e)` to epoch e+1, so epoch e runs at base·factor^e. That is what this class returns
  (its plot of `scheduler(t)` is the same curve shifted one to the left).
- CosineScheduler: after `max_update` the book keeps returning the last value, final_lr; here
  the epoch is clamped to `max_update`.

Build by name with `build_schedule(name, base_lr, steps_per_epoch, **params)`; `schedule_unit(name)`
says whether a name counts epochs or steps.
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Sequence

import keras
import tensorflow as tf

_PACKAGE = "kcv"


class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Base class: converts the optimizer step to an integer epoch and calls `lr_at_epoch`."""

    unit = "epoch"  # what the schedule's time parameters count

    def __init__(self, base_lr: float, steps_per_epoch: int = 1, name: str | None = None):
        super().__init__()
        _check_int("steps_per_epoch", steps_per_epoch, minimum=1)
        _check_positive("base_lr", base_lr, allow_zero=True)
        self.base_lr = float(base_lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.name = name or type(self).__name__

    def __call__(self, step: Any) -> tf.Tensor:
        with tf.name_scope(self.name):
            step = tf.cast(tf.convert_to_tensor(step), tf.int64)
            epoch = tf.cast(step // self.steps_per_epoch, tf.float32)  # () float32
            return tf.cast(self.lr_at_epoch(epoch), tf.float32)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        """The learning rate for a whole-number epoch (a float32 scalar tensor)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "steps_per_epoch": self.steps_per_epoch, "name": self.name}


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConstantLR(EpochSchedule):
    """lr = base_lr (lr-scheduler.md's first run: constant 0.3)."""

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        return tf.fill(tf.shape(epoch), tf.constant(self.base_lr, tf.float32))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StepLR(EpochSchedule):
    """Every `lr_period` epochs multiply by `lr_decay`: base·lr_decay^⌊epoch/lr_period⌋.

    The Kaggle chapters' StepLR(lr_period=4, lr_decay=0.9).
    """

    def __init__(self, base_lr: float, lr_period: int, lr_decay: float, steps_per_epoch: int = 1,
                 name: str | None = None):
        super().__init__(base_lr, steps_per_epoch, name)
        _check_int("lr_period", lr_period, minimum=1)
        _check_positive("lr_decay", lr_decay)
        self.lr_period = int(lr_period)
        self.lr_decay = float(lr_decay)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        return self.base_lr * tf.pow(self.lr_decay, tf.floor(epoch / self.lr_period))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lr_period": self.lr_period, "lr_decay": self.lr_decay}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FactorScheduler(EpochSchedule):
    """The book's FactorScheduler: max(stop_factor_lr, base_lr·factor^epoch).

    The book plots FactorScheduler(factor=0.9, stop_factor_lr=1e-2, base_lr=2.0).
    """

    def __init__(self, base_lr: float, factor: float = 1.0, stop_factor_lr: float = 1e-7,
                 steps_per_epoch: int = 1, name: str | None = None):
        super().__init__(base_lr, steps_per_epoch, name)
        _check_positive("factor", factor)
        _check_positive("stop_factor_lr", stop_factor_lr, allow_zero=True)
        self.factor = float(factor)
        self.stop_factor_lr = float(stop_factor_lr)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        return tf.maximum(self.stop_factor_lr, self.base_lr * tf.pow(self.factor, epoch))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor, "stop_factor_lr": self.stop_factor_lr}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MultiStepLR(EpochSchedule):
    """base·gamma^(number of milestones <= epoch), like torch's MultiStepLR.

    The book: MultiStepLR(lr 0.5, milestones=[15, 30], gamma=0.5): 0.5, then 0.25 from epoch 15,
    0.125 from epoch 30.
    """

    def __init__(self, base_lr: float, milestones: Sequence[int], gamma: float = 0.1,
                 steps_per_epoch: int = 1, name: str | None = None):
        super().__init__(base_lr, steps_per_epoch, name)
        milestones = [milestones] if isinstance(milestones, numbers.Integral) else list(milestones)
        if not milestones or any(not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 0 for m in milestones) \
                or any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must be a non-empty increasing list of epochs >= 0, got {milestones!r}")
        milestones = [int(m) for m in milestones]
        _check_positive("gamma", gamma)
        self.milestones = milestones
        self.gamma = float(gamma)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        passed = tf.reduce_sum(tf.cast(epoch >= tf.constant(self.milestones, tf.float32), tf.float32))
        return self.base_lr * tf.pow(self.gamma, passed)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "milestones": list(self.milestones), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CosineScheduler(EpochSchedule):
    """The book's CosineScheduler: linear warm-up, then half a cosine from base_lr to final_lr.

    epoch < w:            warmup_begin_lr + (base_lr - warmup_begin_lr)·epoch/w
    w <= epoch <= T:      final_lr + (base_lr - final_lr)·(1 + cos(π(epoch - w)/(T - w)))/2
    epoch > T:            final_lr
    with T = max_update, w = warmup_steps (both in epochs). The book: T=20, 0.3 -> 0.01, w=0 or 5.
    """

    def __init__(self, base_lr: float, max_update: int, final_lr: float = 0.0, warmup_steps: int = 0,
                 warmup_begin_lr: float = 0.0, steps_per_epoch: int = 1, name: str | None = None):
        super().__init__(base_lr, steps_per_epoch, name)
        _check_int("max_update", max_update, minimum=1)
        _check_int("warmup_steps", warmup_steps, minimum=0)
        if max_update <= warmup_steps:
            raise ValueError(f"max_update ({max_update}) must be greater than warmup_steps ({warmup_steps})")
        _check_positive("final_lr", final_lr, allow_zero=True)
        _check_positive("warmup_begin_lr", warmup_begin_lr, allow_zero=True)
        self.max_update = int(max_update)
        self.final_lr = float(final_lr)
        self.warmup_steps = int(warmup_steps)
        self.warmup_begin_lr = float(warmup_begin_lr)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        w = float(self.warmup_steps)
        # max(w, 1) keeps the unused warm-up branch finite when there is no warm-up.
        warm = self.warmup_begin_lr + (self.base_lr - self.warmup_begin_lr) * epoch / max(w, 1.0)
        progress = (tf.minimum(epoch, float(self.max_update)) - w) / (self.max_update - w)
        cosine = self.final_lr + (self.base_lr - self.final_lr) * (1.0 + tf.cos(math.pi * progress)) / 2.0
        return tf.where(epoch < w, warm, cosine)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_update": self.max_update, "final_lr": self.final_lr,
                "warmup_steps": self.warmup_steps, "warmup_begin_lr": self.warmup_begin_lr}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ExponentialLR(EpochSchedule):
    """base·exp(-decay_rate·epoch): sgd.md's η0·e^(-λt) (λ = 0.1 in its demo)."""

    def __init__(self, base_lr: float, decay_rate: float = 0.1, steps_per_epoch: int = 1,
                 name: str | None = None):
        super().__init__(base_lr, steps_per_epoch, name)
        _check_positive("decay_rate", decay_rate, allow_zero=True)
        self.decay_rate = float(decay_rate)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        return self.base_lr * tf.exp(-self.decay_rate * epoch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "decay_rate": self.decay_rate}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PolynomialLR(EpochSchedule):
    """base·(beta·epoch + 1)^-alpha: sgd.md's η0·(βt+1)^-α.

    The defaults alpha=0.5, beta=1 are lr-scheduler.md's square-root schedule 0.1·(t+1)^-0.5.
    """

    def __init__(self, base_lr: float, alpha: float = 0.5, beta: float = 1.0, steps_per_epoch: int = 1,
                 name: str | None = None):
        super().__init__(base_lr, steps_per_epoch, name)
        _check_positive("alpha", alpha, allow_zero=True)
        _check_positive("beta", beta, allow_zero=True)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        return self.base_lr * tf.pow(self.beta * epoch + 1.0, -self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TriangularLR(EpochSchedule):
    """A linear ramp up and a linear ramp down, updated every step (the DAWNBench / airbench recipes).

    t = step / steps_per_epoch, a *fractional* epoch: unlike the book's schedules this one moves
    on every update, because its time parameters are in epochs but a fast recipe's few epochs are
    too coarse a grid (the whole first epoch at 0 would be lost).
    t < w:            warmup_begin_lr + (base_lr - warmup_begin_lr)·t/w
    w <= t <= T:      base_lr + (final_lr - base_lr)·(t - w)/(T - w)
    t > T:            final_lr
    with T = max_update, w = warmup_steps (epochs, fractions allowed). ResNet-9 (DAWNBench): w=5,
    T=24, 0 -> 0.4 -> 0. As `triangular_steps` every time parameter counts updates instead.
    """

    def __init__(self, base_lr: float, max_update: float, final_lr: float = 0.0, warmup_steps: float = 0,
                 warmup_begin_lr: float = 0.0, steps_per_epoch: int = 1, name: str | None = None):
        super().__init__(base_lr, steps_per_epoch, name)
        _check_positive("max_update", max_update)
        _check_positive("warmup_steps", warmup_steps, allow_zero=True)
        if max_update <= warmup_steps:
            raise ValueError(f"max_update ({max_update}) must be greater than warmup_steps ({warmup_steps})")
        _check_positive("final_lr", final_lr, allow_zero=True)
        _check_positive("warmup_begin_lr", warmup_begin_lr, allow_zero=True)
        self.max_update = float(max_update)
        self.final_lr = float(final_lr)
        self.warmup_steps = float(warmup_steps)
        self.warmup_begin_lr = float(warmup_begin_lr)

    def __call__(self, step: Any) -> tf.Tensor:
        with tf.name_scope(self.name):
            t = tf.cast(tf.convert_to_tensor(step), tf.float32) / float(self.steps_per_epoch)  # () fractional epoch
            return tf.cast(self.lr_at_epoch(t), tf.float32)

    def lr_at_epoch(self, epoch: tf.Tensor) -> tf.Tensor:
        w, T = self.warmup_steps, self.max_update
        warm = self.warmup_begin_lr + (self.base_lr - self.warmup_begin_lr) * epoch / max(w, 1e-12)
        down = self.base_lr + (self.final_lr - self.base_lr) * (tf.minimum(epoch, T) - w) / (T - w)
        return tf.where(epoch < w, warm, down)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_update": self.max_update, "final_lr": self.final_lr,
                "warmup_steps": self.warmup_steps, "warmup_begin_lr": self.warmup_begin_lr}


SCHEDULES: dict[str, type[EpochSchedule]] = {
    "constant": ConstantLR,
    "step": StepLR,
    "factor": FactorScheduler,
    "multistep": MultiStepLR,
    "cosine": CosineScheduler,
    "exponential": ExponentialLR,
    "poly": PolynomialLR,
    "triangular": TriangularLR,
}

# The keyword parameters each name accepts beyond base_lr and steps_per_epoch.
SCHEDULE_PARAMS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "step": ("lr_period", "lr_decay"),
    "factor": ("factor", "stop_factor_lr"),
    "multistep": ("milestones", "gamma"),
    "cosine": ("max_update", "final_lr", "warmup_steps", "warmup_begin_lr"),
    "exponential": ("decay_rate",),
    "poly": ("alpha", "beta"),
    "triangular": ("max_update", "final_lr", "warmup_steps", "warmup_begin_lr"),
}


STEPS_SUFFIX = "_steps"  # NAME_steps: the schedule NAME counted in optimizer updates
# The per-step warm-up every NAME_steps takes (cosine_steps passes them to the cosine's own warm-up).
WARMUP_PARAMS = ("warmup_steps", "warmup_begin_lr")


def split_schedule_name(name: str) -> tuple[str, str]:
    """("cosine", "epoch") for "cosine", ("cosine", "step") for "cosine_steps".

    Anything that is not a known NAME_steps comes back whole as an epoch name; callers report unknown names.
    """
    if name.endswith(STEPS_SUFFIX) and name[: -len(STEPS_SUFFIX)] in SCHEDULES:
        return name[: -len(STEPS_SUFFIX)], "step"
    return name, "epoch"


def schedule_unit(name: str) -> str:
    """"epoch" or "step": what the schedule `name` (as build_schedule takes it) counts. ValueError if unknown."""
    base, unit = split_schedule_name(name)
    if base not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    return unit


def schedule_params(name: str) -> tuple[str, ...]:
    """The keyword parameters `name` accepts beyond base_lr and steps_per_epoch."""
    base, unit = split_schedule_name(name)
    allowed = SCHEDULE_PARAMS[base]
    return allowed + tuple(p for p in WARMUP_PARAMS if p not in allowed) if unit == "step" else allowed


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PerStepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A book schedule counted in optimizer updates, with an optional linear per-step warm-up.

    schedule: a name of SCHEDULES ("cosine", ...); params: its parameters, every time value in
    updates. The rate of update k is the schedule's value at "epoch" k (it is built with
    steps_per_epoch=1) except during the warm-up: for k < warmup_steps,
        warmup_begin_lr + (inner(warmup_steps) - warmup_begin_lr)·k/warmup_steps,
    a line ending at the value the schedule has when the warm-up ends (base_lr for every schedule
    that has not decayed yet). "cosine" has its own warm-up, with the same formula: there the two
    warm-up parameters go to CosineScheduler itself, so cosine_steps equals
    keras.optimizers.schedules.CosineDecay(initial_learning_rate=warmup_begin_lr,
    decay_steps=max_update - warmup_steps, alpha=final_lr/base_lr, warmup_target=base_lr,
    warmup_steps=warmup_steps).
    Keras calls a schedule with the iteration count before the update, so update 0 runs at
    warmup_begin_lr: base 0.1, warmup_steps 100 runs update 50 at 0.05 and update 100 on at 0.1.
    """

    unit = "step"  # what the schedule's time parameters count

    def __init__(self, schedule: str, base_lr: float, params: dict[str, Any] | None = None,
                 warmup_steps: int = 0, warmup_begin_lr: float = 0.0, name: str | None = None):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
        params = dict(params or {})
        own_warmup = [p for p in WARMUP_PARAMS if p in SCHEDULE_PARAMS[schedule]]
        if own_warmup:  # cosine: its own warm-up, the same line
            params.update({"warmup_steps": warmup_steps, "warmup_begin_lr": warmup_begin_lr})
        else:
            _check_int("warmup_steps", warmup_steps, minimum=0)
            _check_positive("warmup_begin_lr", warmup_begin_lr, allow_zero=True)
        self.inner = SCHEDULES[schedule](base_lr=base_lr, steps_per_epoch=1, **params)
        self.schedule = schedule
        self.base_lr = float(base_lr)
        self.params = {k: v for k, v in params.items() if k not in WARMUP_PARAMS}
        self.warmup_steps = int(warmup_steps)
        self.warmup_begin_lr = float(warmup_begin_lr)
        self._wrap_warmup = bool(self.warmup_steps) and not own_warmup
        self.name = name or f"{type(self.inner).__name__}Steps"

    def __call__(self, step: Any) -> tf.Tensor:
        with tf.name_scope(self.name):
            step = tf.cast(tf.convert_to_tensor(step), tf.int64)
            rate = self.inner(step)  # () float32, the schedule at "epoch" = step
            if not self._wrap_warmup:
                return rate
            w = self.warmup_steps
            end = self.inner(tf.constant(w, tf.int64))
            warm = self.warmup_begin_lr + (end - self.warmup_begin_lr) * tf.cast(step, tf.float32) / float(w)
            return tf.cast(tf.where(step < w, warm, rate), tf.float32)

    def get_config(self) -> dict[str, Any]:
        params = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in self.params.items()}
        return {"schedule": self.schedule, "base_lr": self.base_lr, "params": params,
                "warmup_steps": self.warmup_steps, "warmup_begin_lr": self.warmup_begin_lr, "name": self.name}


def build_schedule(name: str, base_lr: float, steps_per_epoch: int, **params: Any
                   ) -> EpochSchedule | PerStepSchedule:
    """The one factory for training code: `build_schedule("cosine", 0.3, 391, max_update=20, final_lr=0.01)`.

    name: one of "constant", "step", "factor", "multistep", "cosine", "exponential", "poly" (the
    book's schedules, per epoch: lr_period, milestones, max_update, warmup_steps are in epochs and
    the schedule converts the optimizer's step with steps_per_epoch), or any of them with the
    suffix "_steps" (per step: the same formula with every time parameter counted in optimizer
    updates, plus an optional warmup_steps/warmup_begin_lr warm-up; steps_per_epoch is checked,
    then unused). Unknown names, unknown or missing parameters and bad values raise ValueError
    with a one-line message.
    """
    base, unit = split_schedule_name(name)
    if base not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    allowed = schedule_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for schedule {name!r}; valid: {valid}")
    signature = inspect.signature(SCHEDULES[base].__init__).parameters
    missing = [p for p in allowed if p not in params and p in signature
               and signature[p].default is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"schedule {name!r} needs parameter(s) {', '.join(missing)}; valid: {', '.join(allowed)}")
    if unit == "step":
        _check_int("steps_per_epoch", steps_per_epoch, minimum=1)  # the same contract for every name
        warmup = {p: params.pop(p) for p in WARMUP_PARAMS if p in params}
        return PerStepSchedule(base, base_lr, params, **warmup)
    return SCHEDULES[base](base_lr=base_lr, steps_per_epoch=steps_per_epoch, **params)


def parse_schedule_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse flag text `"name:key=value,key=value"` into (name, params) for build_schedule.

    Values are ints or floats; `milestones=15/30` is a list of ints. `"cosine:max_update=20,
    final_lr=0.01,warmup_steps=5"` -> ("cosine", {"max_update": 20, "final_lr": 0.01, "warmup_steps": 5}).
    """
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, text = item.partition("=")
        if not eq or not key.strip() or not text.strip():
            raise ValueError(f"bad schedule parameter {item!r} in {spec!r}; expected key=value")
        params[key.strip()] = _parse_value(text.strip(), spec)
    return name.strip(), params


def _parse_value(text: str, spec: str) -> Any:
    if "/" in text:
        return [_parse_value(part, spec) for part in text.split("/")]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"bad schedule value {text!r} in {spec!r}; expected a number") from None
