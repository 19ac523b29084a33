"""Task classes: what differs between kinds of model (pipelines/tasks/base.py).

Every module here registers its task class on import; adding a task is one new module plus a
preset in pipelines/experiments.py.
"""
from __future__ import annotations

import importlib
import pkgutil

from pipelines.tasks.base import Task

_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is already registered")
    _TASKS[cls.name] = cls
    return cls


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def list_tasks() -> list[str]:
    _load_all()
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    _load_all()
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]()
