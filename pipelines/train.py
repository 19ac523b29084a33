"""kcv-train: run the TFX-style pipeline ExampleGen -> Transform -> Trainer -> Evaluator -> Pusher.

  kcv-train --experiment=resnet18_cifar10                       # embedded data, book settings
  kcv-train --experiment=resnet18_cifar10 --data_dir=DIR        # a Kaggle CIFAR-10 folder
  kcv-train --experiment=resnet18_cifar10 --components=Evaluator,Pusher
  kcv-train --list_experiments

TensorFlow is imported only after the flags parse, so --help answers at once.
"""
from __future__ import annotations

import importlib
import sys
import time

from absl import app, flags, logging

from pipelines import config as config_lib
from pipelines.cli import run_app
from pipelines.experiments import EXPERIMENTS

FLAGS = flags.FLAGS

_MODULES = {"ExampleGen": "example_gen", "Transform": "transform", "Trainer": "trainer",
            "Evaluator": "evaluator", "Pusher": "pusher"}


def list_experiments() -> str:
    rows = [f"{'experiment':26} {'task':15} {'model':10} {'data (--data_dir)':22} book"]
    for name in sorted(EXPERIMENTS):
        e = EXPERIMENTS[name]
        rows.append(f"{name:26} {e.task:15} {e.model:10} {e.source:22} {e.book}")
    return "\n".join(rows)


def fail(message: str, code: int = 1) -> None:
    print(f"kcv-train: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.list_experiments:
        print(list_experiments())
        return
    if not FLAGS.experiment:
        raise app.UsageError("--experiment is required (see --list_experiments)")
    try:
        cfg = config_lib.from_flags(FLAGS)
    except ValueError as err:
        raise app.UsageError(str(err))
    from pipelines import distribute
    from pipelines.artifacts import PipelineError

    try:  # multi_worker: the strategy must exist before any TensorFlow op; non-chief workers get scratch
        cfg = distribute.worker_config(cfg, distribute.setup(cfg.strategy))
    except PipelineError as err:
        fail(str(err))
    path = cfg.write()
    logging.info("config written to %s", path)

    from kcv.data.errors import DataError
    from pipelines.artifacts import new_run_id

    from pipelines.tasks import get_task

    try:
        get_task(cfg.task).preflight(cfg)
    except PipelineError as err:
        fail(str(err))
    run_id = new_run_id()
    for component in cfg.components:
        start = time.time()
        logging.info("=== %s (run %s) ===", component, run_id)
        module = importlib.import_module(f"pipelines.components.{_MODULES[component]}")
        try:
            result = module.run(cfg, run_id)
        except (DataError, PipelineError) as err:
            fail(f"{component}: {err}")
        except FileNotFoundError as err:
            fail(f"{component}: {err}")
        logging.info("%s done in %.1fs: %s", component, time.time() - start, result)
        print(f"{component}: {result}", flush=True)


def run() -> None:
    run_app(main, config_lib.__name__, prog="kcv-train")


if __name__ == "__main__":
    run()
