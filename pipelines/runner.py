"""Runs components in order on one run record: inputs from the record, outputs into it.

`run_pipeline` is what kcv-train does after its flags parse; tests and notebooks call it too.
"""
from __future__ import annotations

import importlib
from typing import Callable

from absl import logging

from pipelines import artifacts
from pipelines.run_record import COMPLETE, FAILED, RunRecord, newest_complete

MODULES = {"ExampleGen": "example_gen", "Transform": "transform", "Trainer": "trainer",
           "Evaluator": "evaluator", "Pusher": "pusher"}


def component(name: str):
    return importlib.import_module(f"pipelines.components.{MODULES[name]}")


def upstream_artifacts(components: tuple[str, ...]) -> tuple[str, ...]:
    """What the components before the first of `components` produce: all a continued run inherits.

    A rerun Trainer must not inherit its parent's blessing (that verdict was on another model).
    """
    first = list(MODULES).index(components[0])
    return tuple(name for c in list(MODULES)[:first] for name in component(c).OUTPUTS)


def parent_record(cfg, run_id: str | None) -> RunRecord | None:
    """The run whose artifacts a partial run continues: --run_id, else the newest complete record
    holding what the first component needs. A run that starts with ExampleGen continues nothing."""
    needs = component(cfg.components[0]).INPUTS
    root = cfg.paths.pipeline_root
    if not needs:
        if run_id:
            raise artifacts.PipelineError(f"--run_id={run_id} names a run to continue, but --components starts "
                                          f"with {cfg.components[0]}, which needs no earlier artifacts")
        return None
    run_id = run_id or newest_complete(root, needs)
    if run_id is None:
        raise artifacts.PipelineError(f"--components={','.join(cfg.components)} continues a run, but "
                                      f"{root}/runs holds no complete run with {', '.join(needs)}: "
                                      "run the whole pipeline first")
    return RunRecord.load(root, run_id)


def check_inputs(record: RunRecord, components: tuple[str, ...]) -> None:
    """Fail before any work when a component's inputs will be neither inherited nor made earlier."""
    available = set(record.artifacts)
    for name in components:
        module = component(name)
        missing = [n for n in module.INPUTS if n not in available]
        if missing:
            record.close(FAILED)
            raise artifacts.PipelineError(
                f"{name} needs the {', '.join(missing)} artifact, and run {record.run_id} will have none (add the "
                "component that makes it to --components, or continue a run that has it with --run_id)")
        available |= set(module.OUTPUTS)


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
    parent = parent_record(cfg, continue_run)
    record = RunRecord.create(cfg.paths.pipeline_root, run_id or artifacts.new_run_id(), cfg.to_dict(),
                              cfg.components, parent, inherit=upstream_artifacts(cfg.components))
    check_inputs(record, cfg.components)
    for name in cfg.components:
        module = component(name)
        logging.info("=== %s (run %s) ===", name, record.run_id)
        inputs = {}
        try:
            inputs = record.inputs_for(name, module.INPUTS)
            record.start(name)
            result = module.run(cfg, task, inputs, record.run_id)
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
