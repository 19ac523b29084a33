"""What the two GAN tasks share: two Adam optimizers, the exported generator, per-epoch samples.

The Trainer drives `GAN.train_step` through pipelines.loop; the exported artifact is the
generator (kcv.serving.generator); the Evaluator samples from the exported SavedModel and checks
the samples against the real data (kcv.metrics.generators). The generator's input is noise, not
images, so a GAN has no validation loss worth reading.
"""
from __future__ import annotations

from typing import ClassVar

import keras

from kcv.models import get_model
from kcv.serving.generator import export_generator
from pipelines.tasks.base import Task, jsonable


class GanTask(Task):
    primary_metric = "checks_passed"
    output: ClassVar[str]  # what the exported generator returns: "points" or "images"

    def build_model(self, cfg, stats: dict, vocabulary: list[str]) -> keras.Model:
        return get_model(cfg.model.name, seed=cfg.runtime.seed, **cfg.model.builder_kwargs(cfg.data.download))

    def compile_model(self, model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
        t = cfg.training
        # The book's Adam: beta_2 0.999 and PyTorch's epsilon 1e-8; beta_1 per preset (DCGAN 0.5).
        model.compile(
            d_optimizer=keras.optimizers.Adam(t.d_lr or t.lr, beta_1=t.adam_beta_1, beta_2=0.999, epsilon=1e-8,
                                              name="d_adam"),
            g_optimizer=keras.optimizers.Adam(t.lr, beta_1=t.adam_beta_1, beta_2=0.999, epsilon=1e-8, name="g_adam"),
            jit_compile=jit_compile,
        )

    def export(self, model: keras.Model, cfg, stats: dict, vocabulary: list[str], path: str) -> str:
        return export_generator(model.generator, path, latent_dim=model.latent_dim, output=self.output)


def checks(report: dict) -> dict:
    """The Evaluator's view of a generator report: 1.0 when every check passed."""
    return {"comparable": True, "primary_metric": GanTask.primary_metric,
            "checks_passed": 1.0 if report["ok"] else 0.0, "report": jsonable(report)}
