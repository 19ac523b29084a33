"""Class folders: `root/<class>/*.{png,jpg,jpeg}`, or a flat/unlabelled image collection."""
from __future__ import annotations

import os
from collections import Counter
from typing import Sequence

from kcv.data.errors import DataError, offenders
from kcv.data.sources.base import Record, Source
from kcv.data.sources.files import is_inside, list_images


class ClassFolderSource(Source):
    """`root/<class>/*.{png,jpg,jpeg}`; ids are `<class>/<file stem>`.

    With `labelled=False` a flat folder (or class folders whose names are ignored) is read
    unlabelled, e.g. sprite collections for a GAN. One split, train; `eval_split` is None.
    """

    name = "class_folders"

    def __init__(self, root: str, classes: Sequence[str] | None = None, labelled: bool = True):
        if not os.path.isdir(root):
            raise DataError(f"data folder not found: {root}")
        self.root = root
        records: list[tuple[str, str, str | None]] = []  # (id, path, label)
        class_dirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
        loose = list_images(root)
        if labelled and loose:
            raise offenders(f"images in {root} are not inside a class folder", loose)
        for f in loose:
            records.append((os.path.splitext(f)[0], os.path.join(root, f), None))
        for d in class_dirs:
            folder = os.path.join(root, d)
            for f in list_images(folder):
                records.append((f"{d}/{os.path.splitext(f)[0]}", os.path.join(folder, f), d if labelled else None))
        if not records:
            raise DataError(f"{root}: no images found (expected <class>/*.png|jpg|jpeg)")
        dups = sorted(i for i, count in Counter(r[0] for r in records).items() if count > 1)
        if dups:
            raise offenders("images share an id (same name, different extension)", dups)
        outside = [os.path.relpath(path, root) for _, path, _ in records if not is_inside(root, path)]
        if outside:
            raise offenders("files are symlinks pointing outside the data folder", outside)
        if classes is not None and labelled:
            unknown = sorted({label for _, _, label in records if label not in set(classes)})
            if unknown:
                raise offenders(f"class folders are unknown (known: {', '.join(classes)})", unknown)
        self._records = [Record(*r) for r in records]

    def records(self, split: str = "train") -> list[Record]:
        if split != "train":
            raise ValueError(f"class folders have one split, train, not {split!r}")
        return list(self._records)
