"""The book's banana-detection layout as a data source, and its reader.

The book (ssd.md / object-detection-dataset.md) describes 256x256 images, each with one banana:

    root/bananas_train/images/<i>.png
    root/bananas_train/label.csv      img_name,label,xmin,ymin,xmax,ymax   (pixel corners)
    root/bananas_val/...              the same

`read_bananas(root, split)` validates the CSV against the files and returns one record per image
with normalised xyxy boxes; `load_bananas` stacks them into arrays for training; `BananasSource`
serves both splits through the Source interface, val as its `eval_split`.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image

from kcv.data.errors import DataError, offenders
from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS
from kcv.data.sources.base import Record, Source, SourceExample

HEADER = ("img_name", "label", "xmin", "ymin", "xmax", "ymax")
SPLITS = ("train", "val")


class BananaRecord(NamedTuple):
    """One image: its CSV name, file path, boxes (N, 4) float32 normalised xyxy, classes (N,) int64."""

    img_name: str
    path: str
    boxes: np.ndarray
    classes: np.ndarray


def _bad_name(name: str) -> bool:
    return not name or os.path.isabs(name) or "/" in name or "\\" in name or name in (".", "..")


def read_bananas(root: str, split: str = "train") -> list[BananaRecord]:
    """Validate and read `root/bananas_<split>/label.csv` -> one BananaRecord per image, CSV order.

    Boxes are pixel corners divided by the image's width/height (the book divides by 256, its
    image size). Raises a one-line DataError naming the count and first offenders for a missing
    or malformed CSV, unsafe names, missing/unreadable images, bad numbers, negative labels,
    xmin >= xmax or ymin >= ymax, and boxes outside the image.
    """
    if split not in SPLITS:
        raise ValueError(f"read_bananas: split must be one of {SPLITS}, got {split!r}")
    folder = os.path.join(root, f"bananas_{split}")
    csv_path = os.path.join(folder, "label.csv")
    if not os.path.isfile(csv_path):
        raise DataError(f"no banana labels at {csv_path} (expected {HEADER} rows and images/<img_name>)")
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(c.strip() for c in rows[0]) != HEADER:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(f"{csv_path}: header must be {','.join(HEADER)}, got {got}")
    if len(rows) == 1:
        raise DataError(f"{csv_path}: no label rows")
    problems: list[str] = []
    sizes: dict[str, tuple[int, int] | None] = {}
    grouped: dict[str, list[tuple[int, list[float]]]] = {}
    for line, row in enumerate(rows[1:], start=2):
        where = f"line {line}"
        if len(row) != len(HEADER):
            problems.append(f"{where}: {len(row)} fields, expected {len(HEADER)}")
            continue
        name = row[0].strip()
        where = f"line {line} ({name})"
        if _bad_name(name):
            problems.append(f"{where}: img_name must be a plain file name")
            continue
        try:
            label_f = float(row[1])
            coords = [float(v) for v in row[2:]]
        except ValueError:
            problems.append(f"{where}: not a number in {','.join(row[1:])}")
            continue
        if not all(math.isfinite(v) for v in [label_f, *coords]) or label_f != int(label_f) or label_f < 0:
            problems.append(f"{where}: label must be an integer >= 0 and coordinates finite, got {','.join(row[1:])}")
            continue
        if name not in sizes:
            path = os.path.join(folder, "images", name)
            try:
                with Image.open(path) as img:
                    sizes[name] = img.size
            except FileNotFoundError:
                sizes[name] = None
                problems.append(f"{where}: image file missing")
            except (OSError, ValueError):
                sizes[name] = None
                problems.append(f"{where}: image unreadable")
        size = sizes[name]
        if size is None:
            continue
        x0, y0, x1, y1 = coords
        if x0 >= x1 or y0 >= y1:
            problems.append(f"{where}: needs xmin < xmax and ymin < ymax, got {x0:g},{y0:g},{x1:g},{y1:g}")
            continue
        if x0 < 0 or y0 < 0 or x1 > size[0] or y1 > size[1]:
            problems.append(f"{where}: box {x0:g},{y0:g},{x1:g},{y1:g} outside the {size[0]}x{size[1]} image")
            continue
        w, h = size
        grouped.setdefault(name, []).append((int(label_f), [x0 / w, y0 / h, x1 / w, y1 / h]))
    if problems:
        raise offenders(f"bad rows in {csv_path}", problems)
    records = []
    for name, items in grouped.items():
        records.append(BananaRecord(
            img_name=name,
            path=os.path.join(folder, "images", name),
            boxes=np.array([b for _, b in items], np.float32).reshape(-1, 4),
            classes=np.array([c for c, _ in items], np.int64),
        ))
    return records


def records_to_labels(records: Sequence[BananaRecord], max_objects: int | None = None) -> np.ndarray:
    """(N, G, 5) float32 rows [class, x1, y1, x2, y2], padded with [-1, 0, 0, 0, 0].

    G = max_objects, or the most objects any image has; extra objects raise ValueError.
    """
    most = max((len(r.classes) for r in records), default=0)
    g = most if max_objects is None else int(max_objects)
    if most > g:
        raise ValueError(f"records_to_labels: an image has {most} objects, more than max_objects={g}")
    labels = np.zeros((len(records), max(g, 1), 5), np.float32)
    labels[..., 0] = -1
    for i, r in enumerate(records):
        n = len(r.classes)
        labels[i, :n, 0] = r.classes
        labels[i, :n, 1:] = r.boxes
    return labels


def load_bananas(root: str, split: str = "train", max_objects: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Read and decode a split: images uint8 (N, H, W, 3), labels float32 (N, G, 5) (see above).

    The book's `read_data_bananas` (its labels are (N, 1, 5) for one banana per image).
    """
    records = read_bananas(root, split)
    images = []
    for r in records:
        with Image.open(r.path) as img:
            images.append(np.asarray(img.convert("RGB"), np.uint8))
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"bananas_{split}: images differ in size ({sorted(shapes)[:3]}); resize them first")
    return np.stack(images), records_to_labels(records, max_objects)


class BananasSource(Source):
    """root/bananas_{train,val}/{images/, label.csv}; boxes normalised xyxy, classes 0-based."""

    name = "bananas"
    native_splits = SPLITS
    eval_split = "val"  # the book's own validation split

    def __init__(self, root: str, class_names: tuple[str, ...] = ("banana",)):
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

    def load(self, split: str = "train", max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> list[SourceExample]:
        # load() keeps records() order and raises on any bad image, so the zip lines up.
        return [dataclasses.replace(ex, boxes=r.boxes, box_classes=r.classes)
                for ex, r in zip(super().load(split, max_image_pixels), self._split(split))]

    def _split(self, split: str) -> list[BananaRecord]:
        if split not in self._splits:
            raise ValueError(f"bananas has splits train and val, not {split!r}")
        return self._splits[split]
