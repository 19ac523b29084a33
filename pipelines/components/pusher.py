"""Pusher: copies the run's blessed SavedModel to <serving_model_dir>/<next integer version>/.

Consumes the run's `model` and `blessing` (the Evaluator's verdict on that same model, both from
the run record). The copy goes to a hidden temporary folder beside the versions and is renamed
into place, so TF Serving (which polls the folder) never loads a half-written version. The whole
push holds an exclusive lock on the serving folder (`.push.lock`), so Pushers of concurrent runs
get distinct versions and never see each other's temporaries: any temporary found while holding
the lock was left by a killed push and is removed. models.config, the TF Serving model config
listing every pushed model, is rewritten under the same lock.
"""
from __future__ import annotations

import json
import os
import shutil

from absl import logging

from pipelines import artifacts
from pipelines.components import Result

INPUTS = ("model", "blessing")
OUTPUTS = ("pushed",)
MODELS_CONFIG = "models.config"
LOCK = ".push.lock"


def write_models_config(models_root: str) -> str:
    """TF Serving --model_config_file listing every model folder with an integer version.

    base_path is /models/<name>: the folder mounted into the tensorflow/serving container
    (`-v "$PWD/saved_models:/models"`), see BUILD.md.
    """
    names = sorted(d for d in os.listdir(models_root)
                   if os.path.isdir(os.path.join(models_root, d))
                   and any(v.isdigit() for v in os.listdir(os.path.join(models_root, d))))
    lines = ["model_config_list {"]
    for name in names:
        lines += ["  config {", f'    name: "{name}"', f'    base_path: "/models/{name}"',
                  '    model_platform: "tensorflow"', "  }"]
    lines.append("}")
    path = os.path.join(models_root, MODELS_CONFIG)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def blessed_reason(blessing: str, model_dir: str | None = None) -> str:
    """The Evaluator's reason; PipelineError when the model was not blessed (or, given
    `model_dir`, when the blessing is a verdict on another model)."""
    if os.path.exists(os.path.join(blessing, "BLESSED")):
        with open(os.path.join(blessing, "BLESSED")) as f:
            verdict = json.loads(f.read())
        if model_dir is not None and os.path.abspath(verdict["model"]) != os.path.abspath(model_dir):
            raise artifacts.PipelineError(f"the blessing {blessing} is for {verdict['model']}, not {model_dir}: "
                                          "run the Evaluator on this model first")
        return verdict["reason"]
    with open(os.path.join(blessing, "NOT_BLESSED")) as f:
        reason = json.loads(f.read())["reason"]
    raise artifacts.PipelineError(f"model not blessed, nothing pushed: {reason}")


def push(source: str, target_root: str, tag: str) -> int:
    """Copy SavedModel `source` to the next integer version under `target_root`; returns it."""
    with artifacts.locked(os.path.join(target_root, LOCK)):
        for stale in (d for d in os.listdir(target_root) if d.startswith(".tmp-")):
            shutil.rmtree(os.path.join(target_root, stale), ignore_errors=True)  # a killed push's
        version = max((int(d) for d in os.listdir(target_root) if d.isdigit()), default=0) + 1
        tmp = os.path.join(target_root, f".tmp-{version}-{tag}")
        shutil.copytree(source, tmp)
        os.replace(tmp, os.path.join(target_root, str(version)))
        return version


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    model_dir = inputs["model"]
    blessed_reason(inputs["blessing"], model_dir)
    target_root = cfg.paths.serving_model_dir
    version = push(os.path.join(model_dir, "Format-Serving"), target_root, run_id)
    models_root = os.path.dirname(os.path.abspath(target_root))
    with artifacts.locked(os.path.join(models_root, LOCK)):
        config_path = write_models_config(models_root)
    pushed_to = os.path.join(target_root, str(version))
    with artifacts.Publish(cfg.paths.pipeline_root, artifacts.PUSHED, run_id) as out:
        with open(os.path.join(out, "pushed.json"), "w") as f:
            json.dump({"model": model_dir, "pushed_to": pushed_to, "version": version,
                       "models_config": config_path}, f, indent=2)
    logging.info("Pusher: pushed version %d to %s", version, target_root)
    return Result({"pushed": os.path.join(artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.PUSHED), run_id)},
                  f"pushed version {version} to {pushed_to}", inputs={}, info={"version": version,
                                                                              "pushed_to": pushed_to})
