"""Vector data on disk: `points.csv` with a header x1,...,xd (the toy GAN's samples)."""
from __future__ import annotations

import csv
import os

import numpy as np

from kcv.data.errors import DataError, offenders
from kcv.data.sources.base import Record, Source, SourceExample

FILENAME = "points.csv"


def write_points_csv(root: str, points: np.ndarray) -> str:
    """Write (n, d) points to root/points.csv; returns root."""
    points = np.asarray(points, dtype=np.float64)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, FILENAME), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"x{i + 1}" for i in range(points.shape[1])])
        w.writerows([[repr(float(v)) for v in row] for row in points])
    return root


class PointsCsvSource(Source):
    """root/points.csv: unlabelled (n, d) float vectors; ids are row numbers from 1.

    No images: `load()` gives examples with `features` set and `encoded` b"".
    """

    name = "points_csv"

    def __init__(self, root: str):
        path = os.path.join(root, FILENAME)
        if not os.path.isfile(path):
            raise DataError(f"{root}: no {FILENAME} (expected a header x1,...,xd and one point per row)")
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        if len(rows) < 2:
            raise DataError(f"{path}: no points")
        width = len(rows[0])
        values, bad = [], []
        for line_no, row in enumerate(rows[1:], start=2):
            try:
                if len(row) != width:
                    raise ValueError
                values.append([float(c) for c in row])
            except ValueError:
                bad.append(f"line {line_no}")
        if bad:
            raise offenders(f"rows of {FILENAME} are not {width} numbers", bad)
        self.points = np.asarray(values, dtype=np.float32)  # (n, d)
        if not np.isfinite(self.points).all():
            raise DataError(f"{path}: points must be finite")

    def records(self, split: str = "train") -> list[Record]:
        self._check_split(split)
        return [Record(str(i + 1), None, None) for i in range(len(self.points))]

    def labels(self) -> list[str]:
        return []

    def read(self, record: Record) -> np.ndarray:
        raise TypeError(f"{self.name} holds vectors, not images: use load() or .points")

    def load(self, split: str = "train", max_image_pixels: int | None = None) -> list[SourceExample]:
        # Vectors, no images: max_image_pixels is accepted (Source.load's signature) and unused.
        self._check_split(split)
        return [SourceExample(str(i + 1), b"", None, features=p) for i, p in enumerate(self.points)]  # p: (d,)

    def validate(self, read_images: bool = True) -> None:
        return None  # the constructor parsed every row

    def _check_split(self, split: str) -> None:
        if split != "train":
            raise ValueError(f"{self.name} has one split, train, not {split!r}")
