"""Writing SavedModels atomically, so a reader (TF Serving, the Evaluator) never sees half a model."""
from __future__ import annotations

import os
import shutil
import uuid

import keras


def write_archive(archive: keras.export.ExportArchive, path: str) -> str:
    """Write `archive` as a SavedModel at `path` via a sibling temporary folder and one rename.

    An existing folder at `path` is replaced. Returns `path`.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(path)}-{uuid.uuid4().hex[:8]}")
    try:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return path
