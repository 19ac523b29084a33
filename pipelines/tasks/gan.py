"""GANs through the one pipeline: the book's toy 2-D Gaussian GAN and DCGAN.

Data: unlabelled images (scaled to [-1, 1]) or 2-D points. The Trainer runs `GAN.train_step` via
fit; the exported artifact is the generator (kcv.serving.generator); the Evaluator samples from
the exported SavedModel and checks it: moments for points (mean and covariance within
`rtol` of the real data), health and diversity for images.
"""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from kcv.data.input import classification_dataset
from kcv.data.schema import parse_example
from kcv.data.tfrecords import read_records
from kcv.models import get_model
from kcv.serving.generator import export_generator
from pipelines.tasks.classification import image_statistics

EVAL_SAMPLES = 5000  # generated points compared with the real data's moments
EVAL_IMAGES = 64


def is_points(cfg) -> bool:
    return cfg.source == "points_csv"


def _points(split_dir: str) -> np.ndarray:
    rows = [parse_example(r)["features"].numpy() for r in read_records(split_dir)]
    return np.stack(rows).astype(np.float32)  # (n, d)


def preflight(cfg) -> None:
    return None


def statistics(cfg, split_dir: str) -> dict:
    if is_points(cfg):
        pts = _points(split_dir)
        return {"mean": pts.mean(0).tolist(), "covariance": np.cov(pts, rowvar=False).tolist(), "count": len(pts)}
    return image_statistics(cfg, split_dir)


def dataset(cfg, examples_dir: str, split: str, training: bool, batch_size: int, with_ids: bool = False):
    split_dir = os.path.join(examples_dir, f"Split-{split}")
    if is_points(cfg):
        ds = tf.data.Dataset.from_tensor_slices(_points(split_dir)).cache()
    else:
        ds = classification_dataset(split_dir, batch_size=batch_size, training=False, image_size=cfg.image_size,
                                    channels=cfg.channels, cache=True).unbatch()
        ds = ds.map(lambda image, _: image / 127.5 - 1.0)  # [0, 255] -> [-1, 1], the book's Normalize(0.5, 0.5)
    if training:
        ds = ds.shuffle(10_000, seed=cfg.seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def validation_dataset(cfg, examples_dir: str, batch_size: int):
    return None  # a GAN has no validation loss worth reading; the Evaluator samples instead


def callbacks(cfg, run_dir: str, examples_dir: str) -> list:
    """A fixed-noise sample grid (images) or real-vs-generated scatter (points) after every epoch."""
    from kcv.callbacks.samples import PointScatter, SampleGrid

    if is_points(cfg):
        real = _points(os.path.join(examples_dir, "Split-train"))
        return [PointScatter(os.path.join(run_dir, "scatter"), real=real, count=200, seed=cfg.seed)]
    return [SampleGrid(os.path.join(run_dir, "samples"), count=64, ncols=8, seed=cfg.seed)]


def build_model(cfg, stats: dict, vocab: list[str]) -> keras.Model:
    return get_model(cfg.model, seed=cfg.seed, **cfg.model_kwargs)


def compile_model(model: keras.Model, cfg, steps_per_epoch: int, jit_compile: bool) -> None:
    d_lr = cfg.d_lr if cfg.d_lr else cfg.lr
    beta_1 = 0.5 if cfg.model == "dcgan" else 0.9  # the book: DCGAN betas (0.5, 0.999); toy GAN Adam defaults
    model.compile(
        d_optimizer=keras.optimizers.Adam(d_lr, beta_1=beta_1, beta_2=0.999, epsilon=1e-8, name="d_adam"),
        g_optimizer=keras.optimizers.Adam(cfg.lr, beta_1=beta_1, beta_2=0.999, epsilon=1e-8, name="g_adam"),
        jit_compile=jit_compile,
    )


def export(model: keras.Model, cfg, stats: dict, vocab: list[str], path: str) -> str:
    return export_generator(model.generator, path, latent_dim=model.latent_dim,
                            output="points" if is_points(cfg) else "images")


def evaluate(saved_model_dir: str, cfg, examples_dir: str, vocab: list[str]) -> dict:
    """Sample from the exported generator (plain TensorFlow) and check it against the real data."""
    from kcv.models.gan import generator_report, moments_report

    loaded = tf.saved_model.load(saved_model_dir)
    sample = loaded.signatures["sample"]
    if is_points(cfg):
        real = np.concatenate([_points(os.path.join(examples_dir, f"Split-{s}")) for s in ("train", "eval")])
        fake = sample(count=tf.constant(EVAL_SAMPLES, tf.int32), seed=tf.constant(cfg.seed, tf.int64))["samples"].numpy()
        report = moments_report(fake, real, rtol=0.1)
    else:
        fake = sample(count=tf.constant(EVAL_IMAGES, tf.int32), seed=tf.constant(cfg.seed, tf.int64))["images"].numpy()
        real = [img for img in dataset(cfg, examples_dir, "eval", training=False, batch_size=EVAL_IMAGES).unbatch()]
        reference = ((np.stack(real) + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8) if len(real) >= 2 else None
        report = generator_report(fake, reference=reference)
    return {"comparable": True, "primary_metric": "checks_passed",
            "checks_passed": 1.0 if report["ok"] else 0.0, "report": _jsonable(report)}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value
