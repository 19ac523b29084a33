"""DCGAN: unlabelled images in (scaled to [-1, 1]), a generator of uint8 images out."""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.input import gan_image_dataset
from kcv.data.statistics import image_statistics
from kcv.metrics.generators import generator_report
from pipelines.tasks import register_task
from pipelines.tasks._gan import GanTask, checks
from pipelines.tasks.base import input_size, split_dir

EVAL_IMAGES = 64  # generated images checked for health and diversity
SEED_STRIDE = 1_000_003  # the sample seeds of runtime seeds s and s+1 never overlap


@register_task
class ImageGan(GanTask):
    name = "gan_images"
    output = "images"
    sources = ("images", "class_folders", "tfds:*")

    def statistics(self, cfg, examples_dir: str) -> dict:
        return image_statistics(split_dir(examples_dir, "train"), image_size=cfg.model.image_size,
                                channels=cfg.model.channels, resize_mode=cfg.data.resize_mode)

    def _images(self, cfg, examples_dir: str, split: str, shape, training: bool, batch_size: int):
        """Real images of `shape` (H, W, C) in [-1, 1]."""
        return gan_image_dataset(split_dir(examples_dir, split), batch_size=batch_size, training=training,
                                 image_size=shape[:2], channels=shape[2], seed=cfg.runtime.seed)

    def train_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset:
        # Real images as the discriminator takes them: the built model says the shape.
        shape = (*input_size(model.discriminator), int(model.discriminator.input_shape[-1]))
        return self._images(cfg, examples_dir, "train", shape, True, cfg.training.batch_size)

    def callbacks(self, cfg, run_dir: str, examples_dir: str) -> list:
        from kcv.callbacks.samples import SampleGrid

        return [SampleGrid(os.path.join(run_dir, "samples"), count=64, ncols=8, seed=cfg.runtime.seed,
                           log_dir=os.path.join(run_dir, "tensorboard"))]

    def evaluate(self, saved_model_dir: str, cfg, examples_dir: str, vocabulary: list[str],
                 progress=None) -> dict:
        """Health and diversity of images sampled from the exported generator, against real eval images.

        One seed per image: runtime.seed * SEED_STRIDE + 0..EVAL_IMAGES-1 (as gan_points does).
        """
        sample = tf.saved_model.load(saved_model_dir).signatures["sample"]
        seeds = cfg.runtime.seed * SEED_STRIDE + np.arange(EVAL_IMAGES, dtype=np.int64)
        fake = sample(seed=tf.constant(seeds, tf.int64))["images"].numpy()
        real = [img for img in self._images(cfg, examples_dir, "eval", fake.shape[1:4], False, EVAL_IMAGES).unbatch()]
        if progress is not None:
            progress.update(len(real))
        reference = ((np.stack(real) + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8) if len(real) >= 2 else None
        return checks(generator_report(fake, reference=reference))
