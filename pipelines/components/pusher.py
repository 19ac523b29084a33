"""Pusher: copies the run's blessed SavedModel to <serving_model_dir>/<next integer version>/.

Consumes the run's `model` and `blessing` (the Evaluator's verdict on that same model, both from
the run record). The whole push holds an exclusive lock on the serving folder (`.push.lock`), so
any number of Pushers (processes) get distinct versions: under the lock it picks max + 1, copies
into a hidden `.tmp-<version>-<run_id>` and renames it into place, so TF Serving (which polls the
folder) never sees a half-written version. A temporary found while holding the lock was left by a
killed push (its lock died with it) and is removed; no other Pusher's temporary can exist then.
A model whose SavedModel fingerprint equals the newest version's is not pushed again ("already
served as version N"). A model the Evaluator refused raises NotBlessedError (kcv-train exit 3).

With --final_fit the Pusher also consumes `final_model` (the runner's FinalFit step: the blessed
recipe retrained on train + eval) and pushes that instead, after checking that it is the refit of
the very model the blessing is on; the record's inputs name both, pushed.json says which was
validated (`validated_model`) and which was pushed (`model`).

models.config (TF Serving's --model_config_file, default the folder holding the model folders)
lists every model pushed there, with base_path <--serving_base_path>/<name>; it is rewritten
whole under a lock of its folder.
"""
from __future__ import annotations

import json
import os
import re
import shutil

from absl import logging

from pipelines import artifacts
from pipelines.components import Result
from pipelines.run_record import blessing_verdict

INPUTS = ("model", "blessing")
OUTPUTS = ("pushed",)
MODELS_CONFIG = "models.config"
LOCK = ".push.lock"


def inputs(cfg) -> tuple[str, ...]:
    """What this run's Pusher consumes: with --final_fit also the final model it pushes."""
    return INPUTS + (("final_model",) if cfg.training.final_fit else ())


def models_config_path(cfg) -> str:
    """--models_config, else models.config beside the model folders (the parent of --serving_model_dir)."""
    return cfg.paths.models_config or os.path.join(
        os.path.dirname(os.path.abspath(cfg.paths.serving_model_dir)), MODELS_CONFIG)


def _quote(text: str) -> str:
    """A text-format string literal (backslash and quote escaped; UTF-8 kept as it is)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


_ENTRY = re.compile(r'name:\s*"((?:[^"\\]|\\.)*)"\s*base_path:\s*"((?:[^"\\]|\\.)*)"')


def read_models_config(path: str) -> dict[str, str]:
    """{model name: base_path} of a models.config this Pusher wrote (empty when there is none)."""
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return {_unquote(name): _unquote(base) for name, base in _ENTRY.findall(f.read())}


def write_models_config(path: str, name: str, base_path: str) -> str:
    """Add (or update) model `name` in the TF Serving model config at `path`; returns `path`.

    Text format of tensorflow.serving.ModelServerConfig: model_config_list { config { name
    base_path model_platform } ... }, models sorted by name.
    """
    models = {**read_models_config(path), name: base_path}
    lines = ["model_config_list {"]
    for model in sorted(models):
        lines += ["  config {", f"    name: {_quote(model)}", f"    base_path: {_quote(models[model])}",
                  '    model_platform: "tensorflow"', "  }"]
    lines.append("}")
    artifacts.write_atomically(path, "\n".join(lines) + "\n")
    return path


def blessed_reason(blessing: str, model_dir: str | None = None) -> str:
    """The Evaluator's reason; PipelineError when the model was not blessed (or, given
    `model_dir`, when the blessing is a verdict on another model)."""
    verdict = blessing_verdict(blessing)
    if not verdict["blessed"]:
        raise artifacts.NotBlessedError(f"model not blessed, nothing pushed: {verdict['reason']}")
    if model_dir is not None and os.path.abspath(verdict["model"] or "") != os.path.abspath(model_dir):
        raise artifacts.PipelineError(f"the blessing {blessing} is for {verdict['model']}, not {model_dir}: "
                                      "run the Evaluator on this model first")
    return verdict["reason"]


def check_final_model(final_model: str, validated: str) -> None:
    """PipelineError unless `final_model` is the final fit of `validated` (its training summary says so)."""
    try:
        with open(os.path.join(final_model, "training_summary.json")) as f:
            refit_of = json.load(f).get("refit_of")
    except (OSError, ValueError) as err:
        raise artifacts.PipelineError(f"{final_model} has no readable training_summary.json ({err})") from None
    if refit_of is None or os.path.abspath(refit_of) != os.path.abspath(validated):
        raise artifacts.PipelineError(f"the final model {final_model} is the refit of {refit_of}, not of the blessed "
                                      f"{validated}: rerun the final fit (--final_fit)")


def fingerprint(saved_model_dir: str) -> str | None:
    """The SavedModel's fingerprint (graph, signatures and variable values), None if it has none."""
    if not os.path.isfile(os.path.join(saved_model_dir, "fingerprint.pb")):
        return None
    import tensorflow as tf

    return tf.saved_model.experimental.read_fingerprint(saved_model_dir).singleprint()


def push(source: str, target_root: str, tag: str) -> tuple[int, bool]:
    """Copy SavedModel `source` to the next integer version under `target_root`.

    Returns (version, already): already=True when the newest version has the same fingerprint,
    in which case nothing is copied and `version` is that newest version.
    """
    os.makedirs(target_root, exist_ok=True)
    with artifacts.locked(os.path.join(target_root, LOCK)):
        for stale in (d for d in os.listdir(target_root) if d.startswith(".tmp-")):
            shutil.rmtree(os.path.join(target_root, stale), ignore_errors=True)  # a killed push's
        newest = max((int(d) for d in os.listdir(target_root) if d.isdigit()), default=0)
        mine = fingerprint(source)
        if newest and mine is not None and fingerprint(os.path.join(target_root, str(newest))) == mine:
            return newest, True
        tmp = os.path.join(target_root, f".tmp-{newest + 1}-{tag}")
        shutil.copytree(source, tmp)
        os.replace(tmp, os.path.join(target_root, str(newest + 1)))
        return newest + 1, False


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    validated = inputs["model"]
    blessed_reason(inputs["blessing"], validated)
    model_dir = validated
    if cfg.training.final_fit:
        check_final_model(inputs["final_model"], validated)
        model_dir = inputs["final_model"]
    target_root = cfg.paths.serving_model_dir
    version, already = push(os.path.join(model_dir, "Format-Serving"), target_root, run_id)
    name = os.path.basename(os.path.abspath(target_root))
    config_path = models_config_path(cfg)
    with artifacts.locked(os.path.join(os.path.dirname(os.path.abspath(config_path)), LOCK)):
        write_models_config(config_path, name, f"{cfg.paths.serving_base_path.rstrip('/')}/{name}")
    pushed_to = os.path.join(target_root, str(version))
    with artifacts.Publish(cfg.paths.pipeline_root, artifacts.PUSHED, run_id) as out:
        with open(os.path.join(out, "pushed.json"), "w") as f:
            json.dump({"model": model_dir, "validated_model": validated, "final_fit": model_dir != validated,
                       "pushed_to": pushed_to, "version": version, "already_served": already,
                       "models_config": config_path}, f, indent=2)
    summary = (f"already served as version {version} ({pushed_to}): same SavedModel fingerprint, nothing copied"
               if already else f"pushed version {version} to {pushed_to}")
    if model_dir != validated:
        summary += f" (the final fit {model_dir} of the validated {validated})"
    logging.info("Pusher: %s", summary)
    return Result({"pushed": os.path.join(artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.PUSHED), run_id)},
                  summary, info={"version": version, "pushed_to": pushed_to, "already_served": already,
                                 "pushed_model": model_dir, "validated_model": validated})
