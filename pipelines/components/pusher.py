"""Pusher: copies a blessed SavedModel to <serving_model_dir>/<next integer version>/.

The copy goes to a hidden temporary folder beside it and is renamed into place, so TF Serving
(which polls the folder) never loads a half-written version. saved_models/models.config, the TF
Serving model config listing every pushed model, is rewritten the same way.
"""
from __future__ import annotations

import json
import os
import shutil

from absl import logging

from pipelines import artifacts

MODELS_CONFIG = "models.config"


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
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    return path


def run(cfg, run_id: str) -> str:
    blessing = artifacts.latest(cfg.pipeline_root, artifacts.BLESSING, "Pusher")
    if not os.path.exists(os.path.join(blessing, "BLESSED")):
        with open(os.path.join(blessing, "NOT_BLESSED")) as f:
            reason = json.loads(f.read())["reason"]
        raise artifacts.PipelineError(f"model not blessed, nothing pushed: {reason}")
    with open(os.path.join(blessing, "BLESSED")) as f:
        model_dir = json.loads(f.read())["model"]
    source = os.path.join(model_dir, "Format-Serving")
    target_root = cfg.serving_model_dir
    os.makedirs(target_root, exist_ok=True)
    # Leftovers of a killed push are hidden temporaries; clear them first.
    for stale in (d for d in os.listdir(target_root) if d.startswith(".tmp-")):
        shutil.rmtree(os.path.join(target_root, stale), ignore_errors=True)
    versions = [int(d) for d in os.listdir(target_root) if d.isdigit()]
    version = max(versions, default=0) + 1
    tmp = os.path.join(target_root, f".tmp-{version}")
    shutil.copytree(source, tmp)
    os.replace(tmp, os.path.join(target_root, str(version)))
    config_path = write_models_config(os.path.dirname(os.path.abspath(target_root)))
    with artifacts.Publish(cfg.pipeline_root, artifacts.PUSHED, run_id) as out:
        with open(os.path.join(out, "pushed.json"), "w") as f:
            json.dump({"model": model_dir, "pushed_to": os.path.join(target_root, str(version)),
                       "version": version, "models_config": config_path}, f, indent=2)
    logging.info("Pusher: pushed version %d to %s", version, target_root)
    return os.path.join(target_root, str(version))
