"""Artifact folders (ARCHITECTURE.md): run ids, the vocabulary file, atomic publishing.

Components never import each other; they receive artifact folders from the run record
(pipelines/run_record.py). An artifact is written under
a hidden temporary name and renamed into place when complete, so a reader never sees half of one.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import secrets
import shutil
import tempfile
from typing import IO, Iterator

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
    """Sortable, unique run id: UTC time to the microsecond, then random hex, so two runs started
    at the same moment on one pipeline root never share artifact folders."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def artifact_dir(root: str, kind: tuple[str, str]) -> str:
    return os.path.join(root, *kind)


VOCABULARY = "labels.txt"  # in the examples artifact: the one class vocabulary, one name a line


def read_vocabulary(examples_dir: str) -> list[str]:
    """The class vocabulary ExampleGen wrote (empty for unlabelled data)."""
    with open(os.path.join(examples_dir, VOCABULARY)) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


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


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on the file `path` (made if missing; released by the kernel
    if the process dies, so a killed holder never blocks the next one)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_lock(path: str) -> IO | None:
    """An exclusive lock on `path` if nobody holds it (the open handle: close it to release), else None."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def write_atomically(path: str, text: str) -> None:
    """Write `text` to `path` through a unique temporary in the same folder, renamed over it:
    readers see the old or the new file whole, and concurrent writers never share a temporary.
    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}-", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class NotBlessedError(PipelineError):
    """The Evaluator refused the model: nothing was pushed. kcv-train exits with NOT_BLESSED_EXIT."""


NOT_BLESSED_EXIT = 3  # kcv-train's exit status for a refused model (1: an error, 0: pushed or already served)
