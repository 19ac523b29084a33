"""Evaluator: scores the exported SavedModel (not the Python object) and decides the blessing.

BLESSED when the primary metric >= --min_accuracy and is not worse than the last pushed version,
scored now on the same eval split, by more than --max_regression. Writes
Evaluator/evaluation/<run_id>/metrics.json and Evaluator/blessing/<run_id>/BLESSED|NOT_BLESSED
(the file holds the reason).
"""
from __future__ import annotations

import json
import os

from absl import logging

from pipelines import artifacts
from pipelines.tasks import get_task


def last_pushed_version(serving_model_dir: str) -> str | None:
    if not os.path.isdir(serving_model_dir):
        return None
    versions = sorted(int(d) for d in os.listdir(serving_model_dir) if d.isdigit())
    return os.path.join(serving_model_dir, str(versions[-1])) if versions else None


def decide(metrics: dict, baseline: dict | None, min_value: float, max_regression: float) -> tuple[bool, str]:
    """(blessed, reason) from the candidate's and the last pushed model's metrics."""
    key = metrics["primary_metric"]
    value = metrics[key]
    if value != value:  # NaN
        return False, f"{key} is NaN"
    if value < min_value:
        return False, f"{key} {value:.4f} is below the threshold {min_value:.4f} (--min_accuracy)"
    if baseline and baseline.get("comparable") and baseline.get(key) is not None:
        if value < baseline[key] - max_regression:
            return False, (f"{key} {value:.4f} is worse than the last pushed version's {baseline[key]:.4f} "
                           f"by more than {max_regression:.4f} (--max_regression)")
        return True, f"{key} {value:.4f} >= {min_value:.4f} and within {max_regression:.4f} of the pushed {baseline[key]:.4f}"
    return True, f"{key} {value:.4f} >= {min_value:.4f}"


def run(cfg, run_id: str) -> str:
    examples = artifacts.latest(cfg.pipeline_root, artifacts.EXAMPLES, "Evaluator")
    model_dir = artifacts.latest(cfg.pipeline_root, artifacts.MODEL, "Evaluator")
    with open(os.path.join(examples, "labels.txt")) as f:
        vocab = [line.rstrip("\n") for line in f if line.strip()]
    task = get_task(cfg.task)
    metrics = task.evaluate(os.path.join(model_dir, "Format-Serving"), cfg, examples, vocab)
    if not metrics.get("comparable", True):
        raise artifacts.PipelineError(f"the trained model does not match the examples: {metrics.get('reason')}")
    baseline, pushed = None, last_pushed_version(cfg.serving_model_dir)
    if pushed:
        try:
            baseline = task.evaluate(pushed, cfg, examples, vocab)
        except Exception as err:  # an incompatible older model is reported, not fatal
            baseline = {"comparable": False, "reason": f"could not score it: {type(err).__name__}"}
        baseline["version_dir"] = pushed
    blessed, reason = decide(metrics, baseline, cfg.min_accuracy, cfg.max_regression)
    metrics.update({"model": model_dir, "baseline": baseline, "blessed": blessed, "reason": reason})
    with artifacts.Publish(cfg.pipeline_root, artifacts.EVALUATION, run_id) as out:
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    with artifacts.Publish(cfg.pipeline_root, artifacts.BLESSING, run_id) as out:
        with open(os.path.join(out, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
            f.write(json.dumps({"model": model_dir, "reason": reason}) + "\n")
    logging.info("Evaluator: %s (%s)", "BLESSED" if blessed else "NOT_BLESSED", reason)
    return os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.BLESSING), run_id)
