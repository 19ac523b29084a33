"""Helpers shared by the file-folder sources: listing images and refusing paths that escape."""
from __future__ import annotations

import os

from kcv.data.images import IMAGE_EXTENSIONS


def is_inside(root: str, path: str) -> bool:
    """True if `path` (after resolving symlinks) stays inside `root`."""
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def list_images(folder: str) -> list[str]:
    """Sorted image file names in `folder`, hidden files left out."""
    return sorted(
        f for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
    )
