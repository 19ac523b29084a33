"""Transform: statistics of the train split only, the numbers the model is built with.

Writes Transform/transform_graph/<run_id>/stats.json. What the statistics are is the task's
business (Task.statistics): for images, the per-channel mean and std of the images as the model
sees them (decoded, resized, values 0-255), which the Trainer puts into the model's first layer,
so training, evaluation and the serving graph normalise identically. The class vocabulary is not
copied: it stays in the examples artifact, the one place it is read from.
"""
from __future__ import annotations

import json
import os

from pipelines import artifacts
from pipelines.components import Result

INPUTS = ("examples",)
OUTPUTS = ("transform",)


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    stats = task.statistics(cfg, inputs["examples"])
    with artifacts.Publish(cfg.paths.pipeline_root, artifacts.TRANSFORM, run_id) as out:
        with open(os.path.join(out, "stats.json"), "w") as f:
            json.dump(stats, f, indent=2)
    path = os.path.join(artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.TRANSFORM), run_id)
    return Result({"transform": path}, f"statistics of {inputs['examples']}")
