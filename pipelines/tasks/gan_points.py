"""The book's toy GAN: 2-D points in, a generator of points out, judged by its moments.

The Evaluator samples EVAL_SAMPLES points from the exported generator and compares their mean and
covariance with the train split's, the points the generator was trained on (the 10% held out
are too few to judge moments by: 100 points' covariance is itself ~14% off). Its primary metric is
`moments_score` = 1 - max(mean_rel_error, cov_rel_error), so --min_accuracy=0.95 means "mean and
covariance within 5% of the data's" (Frobenius-norm ratios, kcv.metrics.moments_report).
"""
from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.input import points_dataset, read_points
from kcv.metrics.generators import moments_report
from pipelines.tasks import register_task
from pipelines.tasks._gan import GanTask, checks
from pipelines.tasks.base import split_dir

# generated points compared with the real data's moments: the sampling error of their covariance
# is then ~1% (of a 5% bar), of their mean ~0.7%
EVAL_SAMPLES = 20_000
SEED_STRIDE = 1_000_003  # a prime > EVAL_SAMPLES: the sample seeds of runtime seeds s and s+1 never overlap
SCATTER_PICTURES = 20  # scatter plots per run: every epochs // 20 epochs, and the last (the book: 20 epochs)


def moments_score(report: dict) -> float:
    """1 - the larger relative error of mean and covariance (1.0 = exact; NaN when not finite)."""
    if not report["finite"]:
        return float("nan")
    return 1.0 - max(report["mean_rel_error"], report["cov_rel_error"])


@register_task
class PointsGan(GanTask):
    name = "gan_points"
    primary_metric = "moments_score"
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

        # The book's picture (100 real points, 100 generated over them), about 20 of them per run.
        real = read_points(split_dir(examples_dir, "train"))
        return [PointScatter(os.path.join(run_dir, "scatter"), real=real, count=100, seed=cfg.runtime.seed,
                             every=max(1, cfg.training.epochs // SCATTER_PICTURES),
                             log_dir=os.path.join(run_dir, "tensorboard"))]

    def evaluate(self, saved_model_dir: str, cfg, examples_dir: str, vocabulary: list[str],
                 progress=None) -> dict:
        """Moments of points sampled from the exported generator against the train split's.

        One seed per sample: runtime.seed * SEED_STRIDE + 0..EVAL_SAMPLES-1, so runs with
        different seeds draw disjoint seed ranges. `report.ok` (and checks_passed) apply the
        same bar as the blessing: both errors <= 1 - --min_accuracy.
        """
        sample = tf.saved_model.load(saved_model_dir).signatures["sample"]
        real = read_points(split_dir(examples_dir, "train"))
        if progress is not None:  # the held-out points are not read: they are too few to judge moments by
            with open(os.path.join(examples_dir, "counts.json")) as f:
                progress.update(int(json.load(f).get("eval", 0)))
        seeds = cfg.runtime.seed * SEED_STRIDE + np.arange(EVAL_SAMPLES, dtype=np.int64)
        fake = sample(seed=tf.constant(seeds, tf.int64))["samples"].numpy()
        rtol = min(max(1.0 - cfg.evaluation.min_accuracy, 0.0), 1.0)
        report = moments_report(fake, real, rtol=rtol)
        return checks(report, moments_score=moments_score(report))
