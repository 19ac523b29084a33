"""Run lineage: `<pipeline_root>/runs/<run_id>.json`, one record per kcv-train run.

ML Metadata's idea without its server (`ml-metadata` has no build for this Python): a record says,
for every component that ran, its status, timings, and the artifact folders it consumed (`inputs`)
and produced (`outputs`) by name (`examples`, `transform`, `model`, `model_run`, `evaluation`,
`blessing`, `final_model`, `final_model_run`, `pushed`), plus the run's config and the source
fingerprint. With --final_fit a `FinalFit` entry (the Trainer's code, run after the Evaluator)
names the validated `model` among its inputs and the refit `final_model` among its outputs, and
the Pusher's inputs name both: which model was validated and which was pushed. Components receive their
inputs from the record, never by looking for "the newest folder": a run that starts with
`--components=Evaluator,Pusher` continues a parent run (`--run_id`, default the newest complete
record) and starts with exactly that run's artifacts.

Only the process that created a record writes it, always whole (a unique temporary file renamed
over it), so a reader never sees half of one and concurrent runs never touch each other's.
"""
from __future__ import annotations

import datetime
import json
import os
import time
from typing import Any

from pipelines.artifacts import PipelineError, write_atomically

RUNS = "runs"
RUNNING, COMPLETE, FAILED = "running", "complete", "failed"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def runs_dir(pipeline_root: str) -> str:
    return os.path.join(pipeline_root, RUNS)


def record_path(pipeline_root: str, run_id: str) -> str:
    return os.path.join(runs_dir(pipeline_root), f"{run_id}.json")


def blessing_verdict(blessing: str) -> dict:
    """The Evaluator's verdict in a blessing artifact: {"blessed", "model", "reason"}.

    `model` is the model folder the verdict is on; the Trainer's final fit and the Pusher read it
    from here (components never import each other). PipelineError when the folder holds neither file.
    """
    for name, blessed in (("BLESSED", True), ("NOT_BLESSED", False)):
        path = os.path.join(blessing, name)
        if os.path.exists(path):
            try:
                with open(path) as f:
                    verdict = json.loads(f.read())
            except ValueError as err:
                raise PipelineError(f"blessing {path} is not valid JSON ({err})") from None
            return {"blessed": blessed, "model": verdict.get("model"), "reason": verdict.get("reason", "")}
    raise PipelineError(f"{blessing} holds no BLESSED or NOT_BLESSED file: run the Evaluator first")


def newest_complete(pipeline_root: str, needs: tuple[str, ...] = ()) -> str | None:
    """The run id of the newest complete record holding the artifacts `needs` (ids sort by start time)."""
    folder = runs_dir(pipeline_root)
    names = sorted((n[:-5] for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")),
                   reverse=True) if os.path.isdir(folder) else []
    for run_id in names:
        try:
            record = RunRecord.load(pipeline_root, run_id)
            if record.status == COMPLETE and all(n in record.artifacts for n in needs):
                return run_id
        except PipelineError:
            continue  # an unreadable record is not complete
    return None


class RunRecord:
    """One run's record; `data` is exactly what the JSON file holds."""

    def __init__(self, pipeline_root: str, data: dict):
        self.pipeline_root = pipeline_root
        self.data = data
        self._clock: dict[str, float] = {}

    # ---- creation ------------------------------------------------------------------------------
    @classmethod
    def create(cls, pipeline_root: str, run_id: str, config: dict, components: tuple[str, ...],
               parent: "RunRecord | None" = None, inherit: tuple[str, ...] | None = None,
               steps: tuple[str, ...] | None = None) -> "RunRecord":
        """A new running record; with `parent`, its source fingerprint and artifacts carry over
        (only those named in `inherit`, when given: what comes before the components rerun).
        `steps`: what will run, in order, when it differs from `components` (the final fit)."""
        inherited = {} if parent is None else {k: v for k, v in parent.artifacts.items()
                                               if inherit is None or k in inherit}
        data = {
            "run_id": run_id, "experiment": config.get("experiment"), "status": RUNNING,
            "started": _now(), "finished": None, "components_requested": list(components),
            "steps": list(steps if steps is not None else components),
            "parent_run": parent.run_id if parent else None,
            "artifacts": inherited,
            "source_fingerprint": parent.data.get("source_fingerprint") if parent else None,
            "config": config, "components": {},
        }
        record = cls(pipeline_root, data)
        record.save()
        return record

    @classmethod
    def load(cls, pipeline_root: str, run_id: str) -> "RunRecord":
        path = record_path(pipeline_root, run_id)
        try:
            with open(path) as f:
                return cls(pipeline_root, json.load(f))
        except FileNotFoundError:
            raise PipelineError(f"no run record {path} (--run_id names a run under {runs_dir(pipeline_root)})") from None
        except ValueError as err:
            raise PipelineError(f"run record {path} is not valid JSON ({err})") from None

    # ---- reading -------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def artifacts(self) -> dict[str, str]:
        return self.data["artifacts"]

    @property
    def path(self) -> str:
        return record_path(self.pipeline_root, self.run_id)

    def inputs_for(self, component: str, names: tuple[str, ...]) -> dict[str, str]:
        """The artifact folders `component` consumes; PipelineError naming what is missing."""
        missing = [n for n in names if n not in self.artifacts]
        if missing:
            raise PipelineError(f"{component} needs the {', '.join(missing)} artifact, and run {self.run_id} has "
                                "none (add the component that makes it to --components, or continue a run that "
                                "has it with --run_id)")
        return {n: self.artifacts[n] for n in names}

    # ---- writing -------------------------------------------------------------------------------
    def start(self, component: str) -> None:
        self._clock[component] = time.monotonic()
        self.data["components"][component] = {"status": RUNNING, "started": _now(), "finished": None,
                                              "seconds": None, "inputs": {}, "outputs": {}}
        self.save()

    def finish(self, component: str, inputs: dict[str, str], outputs: dict[str, str], summary: str,
               info: dict[str, Any] | None = None) -> None:
        entry = self.data["components"][component]
        entry.update(status=COMPLETE, finished=_now(), seconds=round(time.monotonic() - self._clock[component], 3),
                     inputs=dict(inputs), outputs=dict(outputs), summary=summary, **(info or {}))
        self.artifacts.update(outputs)
        self.save()

    def fail(self, component: str, inputs: dict[str, str], message: str) -> None:
        entry = self.data["components"].setdefault(component, {})
        entry.update(status=FAILED, finished=_now(), inputs=dict(inputs), error=message)
        if component in self._clock:
            entry["seconds"] = round(time.monotonic() - self._clock[component], 3)
        self.close(FAILED)

    def close(self, status: str) -> None:
        self.data.update(status=status, finished=_now())
        self.save()

    def save(self) -> None:
        os.makedirs(runs_dir(self.pipeline_root), exist_ok=True)
        write_atomically(self.path, json.dumps(self.data, indent=2, sort_keys=True, default=str) + "\n")

