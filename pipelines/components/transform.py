"""Transform: statistics and vocabulary from the train split only.

Writes <root>/Transform/transform_graph/<run_id>/{stats.json, labels.txt}. The per-channel mean and
std are of images as the model sees them (decoded, resized, values 0-255); the Trainer puts them
into the model's first layer, so training, evaluation and the serving graph normalise identically.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from kcv.data.input import classification_dataset
from pipelines import artifacts


def run(cfg, run_id: str) -> str:
    examples = artifacts.latest(cfg.pipeline_root, artifacts.EXAMPLES, "Transform")
    ds = classification_dataset(os.path.join(examples, "Split-train"), batch_size=256, training=False,
                                image_size=cfg.image_size, channels=cfg.channels, resize_mode=cfg.resize_mode,
                                cache=False)
    total = np.zeros(cfg.channels, np.float64)
    total_sq = np.zeros(cfg.channels, np.float64)
    pixels = 0
    for images, _ in ds:
        x = images.numpy().astype(np.float64)
        total += x.sum(axis=(0, 1, 2))
        total_sq += (x**2).sum(axis=(0, 1, 2))
        pixels += x.shape[0] * x.shape[1] * x.shape[2]
    if pixels == 0:
        raise artifacts.PipelineError(f"Split-train in {examples} is empty")
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-12))
    with artifacts.Publish(cfg.pipeline_root, artifacts.TRANSFORM, run_id) as out:
        with open(os.path.join(out, "stats.json"), "w") as f:
            json.dump({"mean": mean.tolist(), "std": std.tolist(), "image_size": list(cfg.image_size),
                       "channels": cfg.channels, "examples": examples}, f, indent=2)
        shutil.copy(os.path.join(examples, "labels.txt"), os.path.join(out, "labels.txt"))
    return os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.TRANSFORM), run_id)
