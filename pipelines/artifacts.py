"""Artifact folders (DESIGN.md section 5): run ids, latest-run lookup, atomic publishing.

Components never import each other; they agree only on these paths. An artifact is written under
a hidden temporary name and renamed into place when complete, so a reader never sees half of one.
"""
from __future__ import annotations

import datetime
import os
import shutil

EXAMPLES = ("ExampleGen", "examples")
TRANSFORM = ("Transform", "transform_graph")
MODEL = ("Trainer", "model")
MODEL_RUN = ("Trainer", "model_run")
EVALUATION = ("Evaluator", "evaluation")
BLESSING = ("Evaluator", "blessing")
PUSHED = ("Pusher", "pushed_model")


class PipelineError(RuntimeError):
    """A component cannot go on; the message is one line for the user."""


def new_run_id() -> str:
    """Sortable, unique-enough run id: UTC time to the microsecond."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def artifact_dir(root: str, kind: tuple[str, str]) -> str:
    return os.path.join(root, *kind)


def latest(root: str, kind: tuple[str, str], required_by: str = "") -> str:
    """The newest complete run folder of an artifact; PipelineError if there is none."""
    base = artifact_dir(root, kind)
    runs = sorted(d for d in os.listdir(base) if not d.startswith(".")) if os.path.isdir(base) else []
    if not runs:
        who = f" (needed by {required_by})" if required_by else ""
        raise PipelineError(f"no {kind[0]} artifact under {base}{who}: run {kind[0]} first")
    return os.path.join(base, runs[-1])


class Publish:
    """Context manager: write into `<base>/.tmp-<run_id>`, rename to `<base>/<run_id>` on success.

    On an exception the temporary folder is removed, so nothing partial is left behind.
    """

    def __init__(self, root: str, kind: tuple[str, str], run_id: str):
        self.base = artifact_dir(root, kind)
        self.final = os.path.join(self.base, run_id)
        self.tmp = os.path.join(self.base, f".tmp-{run_id}")

    def __enter__(self) -> str:
        os.makedirs(self.base, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            os.replace(self.tmp, self.final)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False
