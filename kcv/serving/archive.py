"""Writing SavedModels atomically, so a reader (TF Serving, the Evaluator) never sees half a model.

Every SavedModel written here carries TF Serving's warm-up requests (`kcv.serving.warmup`).
"""
from __future__ import annotations

import os
import shutil
import uuid

import keras

from kcv.serving.warmup import write_warmup


def write_archive(archive: keras.export.ExportArchive, path: str) -> str:
    """Write `archive` as a SavedModel at `path` via a sibling temporary folder and one rename.

    The warm-up file `assets.extra/tf_serving_warmup_requests` (one request per signature) is
    written into the temporary folder, so it arrives with the model. An existing folder at `path`
    is replaced. Returns `path`.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(path)}-{uuid.uuid4().hex[:8]}")
    try:
        archive.write_out(tmp, verbose=False)
        write_warmup(tmp)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return path
