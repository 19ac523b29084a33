"""Transform: statistics and vocabulary from the train split only.

Writes <root>/Transform/transform_graph/<run_id>/{stats.json, labels.txt}. What the statistics
are is the task's business (tasks/*.statistics): for images, the per-channel mean and std of the
images as the model sees them (decoded, resized, values 0-255), which the Trainer puts into the
model's first layer, so training, evaluation and the serving graph normalise identically.
"""
from __future__ import annotations

import json
import os
import shutil

from pipelines import artifacts
from pipelines.tasks import get_task


def run(cfg, run_id: str) -> str:
    examples = artifacts.latest(cfg.pipeline_root, artifacts.EXAMPLES, "Transform")
    stats = get_task(cfg.task).statistics(cfg, os.path.join(examples, "Split-train"))
    with artifacts.Publish(cfg.pipeline_root, artifacts.TRANSFORM, run_id) as out:
        with open(os.path.join(out, "stats.json"), "w") as f:
            json.dump({**stats, "examples": examples}, f, indent=2)
        shutil.copy(os.path.join(examples, "labels.txt"), os.path.join(out, "labels.txt"))
    return os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.TRANSFORM), run_id)
