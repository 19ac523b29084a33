"""kcv-train: train, evaluate and push a model of one named experiment (a D2L chapter's recipe).

Runs the TFX-style pipeline ExampleGen -> Transform -> Trainer -> Evaluator -> Pusher on the
experiment's data and pushes a SavedModel that TF Serving loads.

  kcv-train --experiment=resnet18_cifar10                       # embedded data, book settings
  kcv-train --experiment=resnet18_cifar10 --data_dir=DIR        # a Kaggle CIFAR-10 folder
  kcv-train --experiment=resnet18_cifar10 --components=Evaluator,Pusher [--run_id=ID]
  kcv-train --experiment=resnet18_cifar10 --data_dir=DIR --final_fit   # push the recipe refit on train + eval
  kcv-train --list_experiments

Every run writes <pipeline_root>/runs/<run_id>.json (pipelines/run_record.py). Exit status: 0 the
model was pushed (or is already served), 3 the Evaluator refused it (nothing pushed, and with
--final_fit nothing refit), 1 an error.
TensorFlow is imported only after the flags parse, so --help answers at once.
"""
from __future__ import annotations

import os

from absl import flags, logging

from pipelines import config as config_lib
from pipelines.cli import fail, run_app
from pipelines.experiments import EXPERIMENTS

FLAGS = flags.FLAGS
config_lib.define_flags(FLAGS)
flags.DEFINE_bool("list_experiments", False, "List the experiments with their data and book results, then exit.")
flags.DEFINE_string("run_id", None, "With --components not starting at ExampleGen: the run whose artifacts to "
                    "continue from (default: the newest complete record under <pipeline_root>/runs).")


def list_experiments() -> str:
    rows = [f"{'experiment':26} {'task':15} {'model':10} {'data (--data_dir)':22} book"]
    for name in sorted(EXPERIMENTS):
        e = EXPERIMENTS[name]
        rows.append(f"{name:26} {e.task:15} {e.model:10} {e.source:22} {e.book}")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    if FLAGS.list_experiments:
        print(list_experiments())
        return
    known = f"one of {', '.join(sorted(EXPERIMENTS))} (see --list_experiments)"
    if not FLAGS.experiment:
        fail(f"--experiment is required: {known}")
    if FLAGS.experiment not in EXPERIMENTS:
        fail(f"--experiment={FLAGS.experiment}: unknown experiment {FLAGS.experiment!r}; use {known}")
    try:
        cfg = config_lib.from_flags(FLAGS)
    except ValueError as err:  # ConfigError, unknown experiment: they name the flag and the valid values
        fail(str(err))
    data_dir = cfg.data.data_dir
    if data_dir and not cfg.data.download and not os.path.isdir(data_dir):  # before anything is written
        fail(f"--data_dir={data_dir}: no such folder")
    from pipelines import distribute
    from pipelines.artifacts import PipelineError

    try:  # multi_worker: the strategy must exist before any TensorFlow op; non-chief workers get scratch
        cfg = distribute.worker_config(cfg, distribute.setup(cfg.runtime.strategy))
    except PipelineError as err:
        fail(str(err))
    if cfg is None:
        print("kcv-train: nothing to run on this worker (the Evaluator and the Pusher run on the chief)")
        return
    from pipelines.optimizers import learning_rate

    try:  # a bad --lr_schedule is a flag mistake: say so now, not after ExampleGen and Transform ran
        learning_rate(cfg.training, steps_per_epoch=1)
    except PipelineError as err:
        fail(str(err))
    except ValueError as err:
        fail(f"--lr_schedule: {err}")
    path = cfg.write(f"{cfg.paths.pipeline_root}/config.json")
    logging.info("config written to %s", path)

    from kcv.data.errors import DataError
    from pipelines.artifacts import NOT_BLESSED_EXIT, NotBlessedError
    from pipelines.runner import run_pipeline

    try:
        record = run_pipeline(cfg, continue_run=FLAGS.run_id,
                              report=lambda name, summary: print(f"{name}: {summary}", flush=True))
    except NotBlessedError as err:  # a refused model is not a broken run: its own exit status
        fail(f"{err.component}: {err}", code=NOT_BLESSED_EXIT)
    except (DataError, PipelineError, FileNotFoundError) as err:
        component = getattr(err, "component", None)
        fail(f"{component}: {err}" if component else str(err))
    print(f"run record: {record.path}", flush=True)


def run() -> None:
    run_app(main, config_lib.__name__, __name__, prog="kcv-train")


if __name__ == "__main__":
    run()
