"""What differs between kinds of model (classification, detection, GAN): data, model, export, scoring.

The components stay generic and call the task named in the config.
"""
from __future__ import annotations

import importlib

TASKS = ("classification", "detection", "gan")


def get_task(name: str):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return importlib.import_module(f"pipelines.tasks.{name}")
