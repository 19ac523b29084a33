"""What the two GAN tasks share: two Adam optimizers, the exported generator, per-epoch samples.

Both optimizers follow --lr_schedule: G's from --lr, D's from --d_lr, so D's learning rate is
d_lr/lr times G's at every step (a schedule's absolute rates, such as cosine's final_lr, are G's
and are scaled by the same ratio for D).

The Trainer drives `GAN.train_step` through pipelines.loop; the exported artifact is the
generator (kcv.serving.generator); the Evaluator samples from the exported SavedModel and checks
the samples against the real data (kcv.metrics.generators). The generator's input is noise, not
images, so a GAN has no validation loss worth reading.
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras

from kcv.models import get_model
from kcv.optim.schedules import parse_schedule_spec
from kcv.serving.generator import export_generator
from pipelines.optimizers import learning_rate
from pipelines.tasks.base import Task, jsonable

def gan_learning_rates(training, steps_per_epoch: int) -> tuple[Any, Any]:
    """(D's, G's) learning rates: floats for a constant schedule, else Keras schedules of --lr_schedule,
    D's scaled by d_lr / lr at every step (pipelines.optimizers.learning_rate's base_lr)."""
    d_lr = training.d_lr or training.lr
    name, params = parse_schedule_spec(training.lr_schedule)
    if name == "constant" and not params:
        return d_lr, training.lr
    return learning_rate(training, steps_per_epoch, base_lr=d_lr), learning_rate(training, steps_per_epoch)


class GanTask(Task):
    primary_metric = "checks_passed"
    output: ClassVar[str]  # what the exported generator returns: "points" or "images"

    def build_model(self, cfg, stats: dict, vocabulary: list[str]) -> keras.Model:
        return get_model(cfg.model.name, seed=cfg.runtime.seed, **cfg.model.builder_kwargs(cfg.data.download))

    def compile_model(self, model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
        t = cfg.training
        d_lr, g_lr = gan_learning_rates(t, steps_per_epoch)
        # The book's Adam: beta_2 0.999 and PyTorch's epsilon 1e-8; beta_1 per preset (DCGAN 0.5).
        model.compile(
            d_optimizer=keras.optimizers.Adam(d_lr, beta_1=t.adam_beta_1, beta_2=0.999, epsilon=1e-8, name="d_adam"),
            g_optimizer=keras.optimizers.Adam(g_lr, beta_1=t.adam_beta_1, beta_2=0.999, epsilon=1e-8, name="g_adam"),
            jit_compile=jit_compile,
        )

    def export(self, model: keras.Model, cfg, stats: dict, vocabulary: list[str], path: str) -> str:
        return export_generator(model.generator, path, latent_dim=model.latent_dim, output=self.output)


def checks(report: dict, **metrics: float) -> dict:
    """The Evaluator's view of a generator report: checks_passed 1.0 when every check passed.

    Extra `metrics` (name=value) join the top level; the primary metric is the first of them, else
    checks_passed.
    """
    primary = next(iter(metrics), GanTask.primary_metric)
    return {"comparable": True, "primary_metric": primary, **metrics,
            "checks_passed": 1.0 if report["ok"] else 0.0, "report": jsonable(report)}
