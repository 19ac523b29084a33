"""The Task interface: what differs between kinds of model, and nothing else.

The components (ExampleGen, Transform, Trainer, Evaluator, Pusher) are generic; each calls the
config's task for the few things that depend on the kind of model: the statistics Transform
computes, the model and its compile settings, the tf.data input, the exported signatures and how
the exported SavedModel is scored. A task never branches on a model or a source name: what varies
within a task is a setting in the config.
"""
from __future__ import annotations

import abc
import json
import os
from typing import Any, ClassVar

import keras
import tensorflow as tf

from pipelines.artifacts import PipelineError


def split_dir(examples_dir: str, split: str) -> str:
    return os.path.join(examples_dir, f"Split-{split}")


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def jsonable(value: Any) -> Any:
    """NumPy scalars and arrays inside nested dicts/lists -> plain JSON values."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else float(v)))


def signature_image_size(signature) -> tuple[int, int]:
    """(H, W) a SavedModel's tensor signature takes: the exported model is the truth about its size."""
    spec = signature.structured_input_signature[1]["images"]
    return int(spec.shape[1]), int(spec.shape[2])


class Task(abc.ABC):
    """One kind of model through the pipeline. Subclasses are registered with `@register_task`."""

    name: ClassVar[str]
    primary_metric: ClassVar[str]  # the Evaluator's blessing metric (--min_accuracy applies to it)
    sources: ClassVar[tuple[str, ...]]  # data source specs this task can read ("tfds:*": any tfds dataset)
    augmentations: ClassVar[tuple[str, ...]] = ("none",)  # data.augment values its training input takes

    def check_source(self, cfg) -> None:
        """--source (or the preset's) must be one this task reads; PipelineError naming the valid ones."""
        spec = cfg.data.source
        if spec in self.sources or (spec.startswith("tfds:") and "tfds:*" in self.sources):
            return
        raise PipelineError(f"--source={spec} cannot feed the {self.name} task of {cfg.experiment}; "
                            f"use one of {', '.join(self.sources)}")

    def check_augment(self, cfg) -> None:
        """--augment must be one this task's input pipeline applies; PipelineError naming the valid ones."""
        if cfg.data.augment not in self.augmentations:
            raise PipelineError(f"--augment={cfg.data.augment} does not apply to the {self.name} task of "
                                f"{cfg.experiment}; use one of {', '.join(self.augmentations)}")

    def check_vocabulary(self, vocabulary: list[str]) -> None:
        """ExampleGen calls this with the source's labels; raise PipelineError if unusable."""

    def preflight(self, cfg) -> None:
        """Checks that can fail before any data is read (e.g. pretrained weights are there)."""

    @abc.abstractmethod
    def statistics(self, cfg, examples_dir: str) -> dict:
        """Transform: numbers of the train split the model is built with (JSON-able)."""

    @abc.abstractmethod
    def build_model(self, cfg, stats: dict, vocabulary: list[str]) -> keras.Model:
        """The model to train, built inside the strategy scope."""

    @abc.abstractmethod
    def compile_model(self, model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
        """Optimizers, losses and metrics."""

    @abc.abstractmethod
    def train_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset:
        """Global batches of the train split for `model` (shuffled, seeded, finite)."""

    def validation_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset | None:
        """Batches of the eval split for the loop's val_* logs; None when there is nothing to read."""
        return None

    def callbacks(self, cfg, run_dir: str, examples_dir: str) -> list[keras.callbacks.Callback]:
        """Extra Trainer callbacks (sample grids, scatter plots) writing under run_dir."""
        return []

    @abc.abstractmethod
    def export(self, model: keras.Model, cfg, stats: dict, vocabulary: list[str], path: str) -> str:
        """Write the serving SavedModel to `path`."""

    @abc.abstractmethod
    def evaluate(self, saved_model_dir: str, cfg, examples_dir: str, vocabulary: list[str],
                 progress=None) -> dict:
        """Score an exported SavedModel with plain TensorFlow on the eval split.

        Returns a JSON-able dict with `primary_metric` naming the blessing metric, and
        `comparable: False` plus a `reason` when the model cannot be scored on this data.
        progress: a pipelines.progress.Progress over the eval split's examples (update(n) per
        batch read), or None.
        """


def input_size(model: keras.Model) -> tuple[int, int]:
    """(H, W) of a model's image input: the built model is the truth about its size.

    Functional models say it in `input_shape`; kcv's subclassed image models (TinySSD) in
    `image_shape` (H, W, C).
    """
    shape = getattr(model, "image_shape", None)
    if shape is None:
        shape = model.input_shape[1:] if isinstance(model.input_shape, tuple) else ()
    if len(shape) != 3:
        raise PipelineError(f"model {model.name} does not take (batch, H, W, C) images")
    return int(shape[0]), int(shape[1])
