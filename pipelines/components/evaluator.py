"""Evaluator: scores the run's exported SavedModel (not the Python object) and decides the blessing.

BLESSED when the task's primary metric >= --min_accuracy and is not worse than the last pushed
version, scored now on the same eval split, by more than --max_regression. Consumes the run's
`examples` and `model`; writes Evaluator/evaluation/<run_id>/metrics.json and
Evaluator/blessing/<run_id>/BLESSED|NOT_BLESSED (the file holds the model and the reason).
"""
from __future__ import annotations

import json
import os

from absl import logging

from pipelines import artifacts
from pipelines.components import Result

INPUTS = ("examples", "model")
OUTPUTS = ("evaluation", "blessing")
BLESSED, NOT_BLESSED = "BLESSED", "NOT_BLESSED"


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


def _baseline(task, cfg, examples: str, vocabulary: list[str]) -> dict | None:
    """The last pushed version scored now on the same examples (None when nothing is pushed)."""
    pushed = last_pushed_version(cfg.paths.serving_model_dir)
    if not pushed:
        return None
    try:
        baseline = task.evaluate(pushed, cfg, examples, vocabulary)
    except Exception as err:  # an incompatible older model is reported, not fatal
        baseline = {"comparable": False, "reason": f"could not score it: {type(err).__name__}"}
    return {**baseline, "version_dir": pushed}


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    examples, model_dir = inputs["examples"], inputs["model"]
    vocabulary = artifacts.read_vocabulary(examples)
    metrics = task.evaluate(os.path.join(model_dir, "Format-Serving"), cfg, examples, vocabulary)
    if not metrics.get("comparable", True):
        raise artifacts.PipelineError(f"the trained model does not match the examples: {metrics.get('reason')}")
    baseline = _baseline(task, cfg, examples, vocabulary)
    blessed, reason = decide(metrics, baseline, cfg.evaluation.min_accuracy, cfg.evaluation.max_regression)
    metrics.update({"model": model_dir, "examples_dir": examples, "baseline": baseline, "blessed": blessed,
                    "reason": reason})
    root = cfg.paths.pipeline_root
    with artifacts.Publish(root, artifacts.EVALUATION, run_id) as out:
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    with artifacts.Publish(root, artifacts.BLESSING, run_id) as out:
        with open(os.path.join(out, BLESSED if blessed else NOT_BLESSED), "w") as f:
            f.write(json.dumps({"model": model_dir, "reason": reason}) + "\n")
    logging.info("Evaluator: %s (%s)", BLESSED if blessed else NOT_BLESSED, reason)
    outputs = {"evaluation": os.path.join(artifacts.artifact_dir(root, artifacts.EVALUATION), run_id),
               "blessing": os.path.join(artifacts.artifact_dir(root, artifacts.BLESSING), run_id)}
    consumed = {"baseline": baseline["version_dir"]} if baseline else {}
    key = metrics["primary_metric"]
    return Result(outputs, f"{BLESSED if blessed else NOT_BLESSED}: {reason}", inputs=consumed,
                  info={"blessed": blessed, key: metrics[key]})
