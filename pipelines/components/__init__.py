"""TFX-style components. Each module declares the artifacts it consumes (INPUTS) and produces
(OUTPUTS) by name and has `run(cfg, task, inputs, run_id) -> Result`; the runner
(pipelines/runner.py) hands it `inputs` from the run record and records the Result. Components
never import each other."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Result:
    """What a component made: artifact folders by name, a one-line summary, and extra facts for the record."""

    outputs: dict[str, str]
    summary: str
    inputs: dict[str, str] = dataclasses.field(default_factory=dict)  # consumed beyond INPUTS (e.g. a baseline)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
