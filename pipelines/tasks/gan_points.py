"""The book's toy GAN: 2-D points in, a generator of points out, judged by its moments."""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.input import points_dataset, read_points
from kcv.metrics.generators import moments_report
from pipelines.tasks import register_task
from pipelines.tasks._gan import GanTask, checks
from pipelines.tasks.base import split_dir

EVAL_SAMPLES = 5000  # generated points compared with the real data's moments
SEED_STRIDE = 1_000_003  # a prime > EVAL_SAMPLES: the sample seeds of runtime seeds s and s+1 never overlap
MOMENTS_RTOL = 0.1  # mean and covariance within 10% of the data's (Frobenius-norm ratios)


@register_task
class PointsGan(GanTask):
    name = "gan_points"
    output = "points"
    sources = ("points_csv",)

    def statistics(self, cfg, examples_dir: str) -> dict:
        pts = read_points(split_dir(examples_dir, "train"))
        return {"mean": pts.mean(0).tolist(), "covariance": np.cov(pts, rowvar=False).tolist(), "count": len(pts)}

    def train_dataset(self, cfg, examples_dir: str, model: keras.Model) -> tf.data.Dataset:
        return points_dataset(split_dir(examples_dir, "train"), batch_size=cfg.training.batch_size, training=True,
                              seed=cfg.runtime.seed)

    def callbacks(self, cfg, run_dir: str, examples_dir: str) -> list:
        from kcv.callbacks.samples import PointScatter

        real = read_points(split_dir(examples_dir, "train"))
        return [PointScatter(os.path.join(run_dir, "scatter"), real=real, count=200, seed=cfg.runtime.seed,
                             log_dir=os.path.join(run_dir, "tensorboard"))]

    def evaluate(self, saved_model_dir: str, cfg, examples_dir: str, vocabulary: list[str],
                 progress=None) -> dict:
        """Moments of points sampled from the exported generator against all the real points.

        One seed per sample: runtime.seed * SEED_STRIDE + 0..EVAL_SAMPLES-1, so runs with
        different seeds draw disjoint seed ranges.
        """
        sample = tf.saved_model.load(saved_model_dir).signatures["sample"]
        parts = {s: read_points(split_dir(examples_dir, s)) for s in ("train", "eval")}
        real = np.concatenate([parts["train"], parts["eval"]])
        if progress is not None:
            progress.update(len(parts["eval"]))
        seeds = cfg.runtime.seed * SEED_STRIDE + np.arange(EVAL_SAMPLES, dtype=np.int64)
        fake = sample(seed=tf.constant(seeds, tf.int64))["samples"].numpy()
        return checks(moments_report(fake, real, rtol=MOMENTS_RTOL))
