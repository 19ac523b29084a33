"""The book's banana-detection layout as a data source: images with boxes, train and val splits."""
from __future__ import annotations

import os

import numpy as np

from kcv.data.errors import DataError
from kcv.data.sources import Record, Source


class BananasSource(Source):
    """root/bananas_{train,val}/{images/, label.csv}; boxes normalised xyxy, classes 0-based."""

    name = "bananas"
    native_splits = ("train", "val")
    eval_split = "val"

    def __init__(self, root: str, class_names: tuple[str, ...] = ("banana",)):
        from kcv.data.bananas import read_bananas  # validates the CSVs and files

        if not os.path.isdir(root):
            raise DataError(f"data folder not found: {root}")
        self._splits = {split: read_bananas(root, split) for split in self.native_splits}
        top = max((int(r.classes.max()) for recs in self._splits.values() for r in recs if len(r.classes)), default=0)
        if top >= len(class_names):
            class_names = tuple(f"class_{i}" for i in range(top + 1))
        self._names = list(class_names)

    def labels(self) -> list[str]:
        return list(self._names)

    def records(self, split: str = "train") -> list[Record]:
        return [Record(os.path.splitext(r.img_name)[0], r.path, None) for r in self._split(split)]

    def objects(self, split: str = "train") -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image (boxes (N, 4) normalised xyxy, classes (N,)), in records() order."""
        return [(r.boxes, r.classes) for r in self._split(split)]

    def _split(self, split: str):
        if split not in self._splits:
            raise ValueError(f"bananas has splits train and val, not {split!r}")
        return self._splits[split]
