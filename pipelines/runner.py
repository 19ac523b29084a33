"""Runs components in order on one run record: inputs from the record, outputs into it.

`run_pipeline` is what kcv-train does after its flags parse; tests and notebooks call it too.

The steps are the requested components in pipeline order, plus, with --final_fit and the Pusher
requested, `FinalFit` right before the Pusher: the Trainer component's own code
(`trainer.final_fit`) retraining the blessed recipe on every labelled example, which is then what
the Pusher pushes. FinalFit is not a --components name: it is how the Pusher's model is made.
"""
from __future__ import annotations

import importlib
import dataclasses
from typing import Callable

from absl import logging

from pipelines import artifacts
from pipelines.run_record import COMPLETE, FAILED, RunRecord, newest_complete

MODULES = {"ExampleGen": "example_gen", "Transform": "transform", "Trainer": "trainer",
           "Evaluator": "evaluator", "Pusher": "pusher"}
FINAL_FIT = "FinalFit"
STEPS = ("ExampleGen", "Transform", "Trainer", "Evaluator", FINAL_FIT, "Pusher")


def component(name: str):
    return importlib.import_module(f"pipelines.components.{MODULES[name]}")


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a run: its record name, the artifacts it consumes and makes, and its code."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    run: Callable


def step(name: str, cfg=None) -> Step:
    """The step `name` (a component, or FinalFit: the Trainer's final_fit); `cfg` decides the
    inputs of a component whose inputs depend on the settings (the Pusher's final model)."""
    if name == FINAL_FIT:
        module = component("Trainer")
        return Step(name, module.FINAL_FIT_INPUTS, module.FINAL_FIT_OUTPUTS, module.final_fit)
    module = component(name)
    inputs = module.inputs(cfg) if cfg is not None and hasattr(module, "inputs") else module.INPUTS
    return Step(name, tuple(inputs), module.OUTPUTS, module.run)


def planned_steps(cfg) -> tuple[str, ...]:
    """cfg.components in pipeline order, with FinalFit before the Pusher when --final_fit is set."""
    names = [c for c in cfg.components]
    if cfg.training.final_fit and "Pusher" in names:
        names.insert(names.index("Pusher"), FINAL_FIT)
    return tuple(names)


def upstream_artifacts(components: tuple[str, ...]) -> tuple[str, ...]:
    """What the steps before the first of `components` produce: all a continued run inherits.

    A rerun Trainer must not inherit its parent's blessing (that verdict was on another model).
    """
    first = STEPS.index(components[0])
    return tuple(name for c in STEPS[:first] for name in step(c).outputs)


def parent_record(cfg, run_id: str | None) -> RunRecord | None:
    """The run whose artifacts a partial run continues: --run_id, else the newest complete record
    holding what the first step needs. A run that starts with ExampleGen continues nothing."""
    first = planned_steps(cfg)[0]
    needs = step(first, cfg).inputs
    root = cfg.paths.pipeline_root
    if not needs:
        if run_id:
            raise artifacts.PipelineError(f"--run_id={run_id} names a run to continue, but --components starts "
                                          f"with {first}, which needs no earlier artifacts")
        return None
    run_id = run_id or newest_complete(root, needs)
    if run_id is None:
        raise artifacts.PipelineError(f"--components={','.join(cfg.components)} continues a run, but "
                                      f"{root}/runs holds no complete run with {', '.join(needs)}: "
                                      "run the whole pipeline first")
    return RunRecord.load(root, run_id)


def check_inputs(record: RunRecord, components: tuple[str, ...], cfg=None) -> None:
    """Fail before any work when a step's inputs will be neither inherited nor made earlier."""
    available = set(record.artifacts)
    for name in components:
        planned = step(name, cfg)
        missing = [n for n in planned.inputs if n not in available]
        if missing:
            record.close(FAILED)
            raise artifacts.PipelineError(
                f"{name} needs the {', '.join(missing)} artifact, and run {record.run_id} will have none (add the "
                "component that makes it to --components, or continue a run that has it with --run_id)")
        available |= set(planned.outputs)


def run_pipeline(cfg, *, run_id: str | None = None, continue_run: str | None = None,
                 report: Callable[[str, str], None] | None = None) -> RunRecord:
    """Run cfg.components on a new record (id `run_id`, default a fresh one); returns it complete.

    continue_run: the run whose artifacts the first component's inputs come from (see parent_record).
    On a component failure the record is marked failed and the error propagates.
    """
    from pipelines.tasks import get_task

    task = get_task(cfg.task)
    task.check_source(cfg)
    task.check_augment(cfg)
    task.preflight(cfg)
    steps = planned_steps(cfg)
    if cfg.training.final_fit and cfg.runtime.strategy == "multi_worker":  # every worker refuses alike
        # Only the chief evaluates, so the other workers could not know whether to take part in the refit.
        raise artifacts.PipelineError("--final_fit is not supported with --strategy=multi_worker (only the chief "
                                      "runs the Evaluator); refit with another strategy")
    parent = parent_record(cfg, continue_run)
    record = RunRecord.create(cfg.paths.pipeline_root, run_id or artifacts.new_run_id(), cfg.to_dict(),
                              cfg.components, parent, inherit=upstream_artifacts(steps), steps=steps)
    check_inputs(record, steps, cfg)
    for name in steps:
        planned = step(name, cfg)
        logging.info("=== %s (run %s) ===", name, record.run_id)
        inputs = {}
        try:
            inputs = record.inputs_for(name, planned.inputs)
            record.start(name)
            result = planned.run(cfg, task, inputs, record.run_id)
        except BaseException as err:  # KeyboardInterrupt too: the record must not stay "running"
            record.fail(name, inputs, f"{type(err).__name__}: {err}")
            err.component = name  # for the binary's one-line error
            raise
        if "source_fingerprint" in result.info:
            record.data["source_fingerprint"] = result.info["source_fingerprint"]
        record.finish(name, {**inputs, **result.inputs}, result.outputs, result.summary, result.info)
        logging.info("%s done: %s", name, result.summary)
        if report:
            report(name, result.summary)
    record.close(COMPLETE)
    return record
