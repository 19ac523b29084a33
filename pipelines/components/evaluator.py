"""Evaluator: scores the run's exported SavedModel (not the Python object) and decides the blessing.

BLESSED when the task's primary metric >= --min_accuracy and is not worse than the last pushed
version, scored now on the same eval split, by more than --max_regression. Consumes the run's
`examples` and `model`; writes Evaluator/evaluation/<run_id>/metrics.json and
Evaluator/blessing/<run_id>/BLESSED|NOT_BLESSED (the file holds the model and the reason).

The evaluation artifact also holds the report: confusion_matrix.png (classifiers),
precision_recall.png (detectors) and tensorboard/ with the scalar metrics (tags
evaluation/<metric>, primary/<metric>, per_class_accuracy/<class>) and the report pictures
(report/confusion_matrix, report/precision_recall), all at step 0. Scoring the eval split shows
a progress line (pipelines.progress).

A served final fit (--final_fit: its SavedModel carries assets.extra/kcv_lineage.json) trained on
every labelled example, so scoring it on an eval split would flatter it. When it was refit on
these very examples (same examples fingerprint) its baseline is the held-out score its recipe got
before the refit (recorded in the lineage file); on other examples it is not compared (the
--min_accuracy bar still applies) and the metrics say why.
"""
from __future__ import annotations

import json
import os

from absl import logging

from pipelines import artifacts
from pipelines.components import Result
from pipelines.progress import Progress

INPUTS = ("examples", "model")
OUTPUTS = ("evaluation", "blessing")
BLESSED, NOT_BLESSED = "BLESSED", "NOT_BLESSED"
LINEAGE = os.path.join("assets.extra", "kcv_lineage.json")  # what the Trainer's final fit writes beside a SavedModel


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
    final = final_fit_baseline(pushed, examples)
    if final is not None:
        return {**final, "version_dir": pushed}
    try:
        baseline = task.evaluate(pushed, cfg, examples, vocabulary)
    except Exception as err:  # an incompatible older model is reported, not fatal
        baseline = {"comparable": False, "reason": f"could not score it: {type(err).__name__}"}
    return {**baseline, "version_dir": pushed}


def final_fit_baseline(version_dir: str, examples: str) -> dict | None:
    """The baseline of a served final fit (None: the version is not one, score it as usual)."""
    path = os.path.join(version_dir, LINEAGE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            lineage = json.load(f)
        with open(os.path.join(examples, "counts.json")) as f:
            mine = json.load(f).get("fingerprint")
    except (OSError, ValueError) as err:
        return {"comparable": False, "final_fit": True, "reason": f"unreadable lineage ({type(err).__name__})"}
    if not lineage.get("final_fit"):
        return None
    validated = lineage.get("validated") or {}
    key = validated.get("primary_metric")
    if mine is not None and lineage.get("examples_fingerprint") == mine and key in validated:
        return {"comparable": True, "final_fit": True, "primary_metric": key, key: validated[key],
                "reason": "the served version is a final fit on these examples: its recipe's held-out score "
                          "before the refit"}
    return {"comparable": False, "final_fit": True,
            "reason": "the served version is a final fit on other examples (it may have trained on this eval "
                      "split): not compared"}


def _eval_count(examples: str) -> int:
    try:
        with open(os.path.join(examples, "counts.json")) as f:
            return int(json.load(f).get("eval", 0))
    except (OSError, ValueError):
        return 0


def report_figures(metrics: dict) -> dict:
    """{file name: Figure} of the report the metrics allow: the confusion matrix, precision-recall curves."""
    from kcv.viz.reports import confusion_figure, precision_recall_figure

    figures = {}
    if metrics.get("confusion_matrix") is not None:
        names = list(metrics.get("per_class_accuracy") or range(len(metrics["confusion_matrix"])))
        figures["confusion_matrix.png"] = confusion_figure(metrics["confusion_matrix"], [str(n) for n in names])
    pr = metrics.get("precision_recall")
    if pr:
        figures["precision_recall.png"] = precision_recall_figure(pr["precision"], pr["iou_threshold"])
    return figures


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """TensorBoard tags -> values: every top-level number, the primary metric, per-class accuracies."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    key = metrics["primary_metric"]
    scalars = {f"evaluation/{k}": float(v) for k, v in metrics.items() if number(v)}
    if number(metrics.get(key)):
        scalars[f"primary/{key}"] = float(metrics[key])
    for name, v in (metrics.get("per_class_accuracy") or {}).items():
        if number(v):
            scalars[f"per_class_accuracy/{name}"] = float(v)
    return scalars


def write_report(metrics: dict, out: str) -> list[str]:
    """The report PNGs and TensorBoard events into `out`; returns the PNG names written."""
    import tensorflow as tf

    from kcv.viz.boxes import save_figure
    from kcv.viz.figures import figure_to_array

    figures = report_figures(metrics)
    writer = tf.summary.create_file_writer(os.path.join(out, "tensorboard"))
    with writer.as_default():
        for tag, value in scalar_metrics(metrics).items():
            tf.summary.scalar(tag, value, step=0)
        for name, fig in figures.items():
            save_figure(fig, os.path.join(out, name))
            tf.summary.image(f"report/{os.path.splitext(name)[0]}", figure_to_array(fig)[None], step=0)
    writer.close()  # before Publish renames the folder
    return sorted(figures)


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    examples, model_dir = inputs["examples"], inputs["model"]
    vocabulary = artifacts.read_vocabulary(examples)
    progress = Progress(_eval_count(examples), "Evaluator", unit="examples")
    try:
        metrics = task.evaluate(os.path.join(model_dir, "Format-Serving"), cfg, examples, vocabulary,
                                progress=progress)
    finally:
        progress.close()
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
        pictures = write_report(metrics, out)
    with artifacts.Publish(root, artifacts.BLESSING, run_id) as out:
        with open(os.path.join(out, BLESSED if blessed else NOT_BLESSED), "w") as f:
            f.write(json.dumps({"model": model_dir, "reason": reason}) + "\n")
    logging.info("Evaluator: %s (%s); report %s", BLESSED if blessed else NOT_BLESSED, reason,
                 ", ".join(pictures) or "metrics only")
    outputs = {"evaluation": os.path.join(artifacts.artifact_dir(root, artifacts.EVALUATION), run_id),
               "blessing": os.path.join(artifacts.artifact_dir(root, artifacts.BLESSING), run_id)}
    consumed = {"baseline": baseline["version_dir"]} if baseline else {}
    key = metrics["primary_metric"]
    return Result(outputs, f"{BLESSED if blessed else NOT_BLESSED}: {reason}", inputs=consumed,
                  info={"blessed": blessed, key: metrics[key]})
