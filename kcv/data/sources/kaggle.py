"""Kaggle competition folders: `train/<id>.<ext>` + a label CSV, optional unlabelled `test/`."""
from __future__ import annotations

import csv
import os
from typing import Sequence

from kcv.data.errors import DataError, offenders
from kcv.data.sources.base import Record, Source
from kcv.data.sources.files import is_inside, list_images


def _bad_id(image_id: str) -> bool:
    return (
        not image_id
        or os.path.isabs(image_id)
        or "/" in image_id
        or "\\" in image_id
        or image_id in (".", "..")
        or ".." in image_id.split(os.sep)
    )


def read_label_csv(path: str, id_column: str, label_column: str) -> list[tuple[str, str]]:
    """Rows (id, label) of a Kaggle label CSV. Accepts a UTF-8 BOM and CRLF line endings."""
    if not os.path.isfile(path):
        raise DataError(f"label file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty label file")
        header = [h.strip() for h in header]
        if id_column not in header or label_column not in header:
            raise DataError(
                f"{path}: header must name columns {id_column!r} and {label_column!r}, got {header}"
            )
        i_id, i_label = header.index(id_column), header.index(label_column)
        rows, short = [], []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue  # blank lines, e.g. a trailing newline
            if len(row) <= max(i_id, i_label):
                short.append(f"line {line_no}")
                continue
            rows.append((row[i_id].strip(), row[i_label].strip()))
    if short:
        raise offenders(f"rows of {os.path.basename(path)} have too few columns", short)
    return rows


def sort_by_id(records: list[Record]) -> list[Record]:
    """Numeric ids in numeric order (Kaggle CIFAR-10: 1, 2, ..., 10), others as strings after."""
    return sorted(records, key=lambda r: (0, int(r.id), "") if r.id.isdigit() else (1, 0, r.id))


class KaggleCsvSource(Source):
    """Kaggle competition layout: `train/<id>.<ext>` + a label CSV, optional `test/<id>.<ext>`.

    The test split is unlabelled, so `eval_split` is None: the pipeline holds out part of train.

    Args:
      root: the competition folder.
      csv_name, id_column, label_column, extension: the competition's naming.
      classes: if given, labels outside it are errors (e.g. a model's vocabulary).
    """

    def __init__(
        self,
        root: str,
        csv_name: str,
        id_column: str,
        label_column: str,
        extension: str,
        classes: Sequence[str] | None = None,
        name: str = "kaggle",
    ):
        self.root, self.name, self.extension = root, name, extension
        self.csv_path = os.path.join(root, csv_name)
        if not os.path.isdir(root):
            raise DataError(f"data folder not found: {root}")
        train_dir = os.path.join(root, "train")
        if not os.path.isdir(train_dir):
            raise DataError(f"{root}: no train/ folder (expected the Kaggle layout train/<id>{extension} + {csv_name})")
        rows = read_label_csv(self.csv_path, id_column, label_column)
        if not rows:
            raise DataError(f"{self.csv_path}: no labelled rows")
        self._train = self._validate_rows(rows, train_dir, classes)
        test_dir = os.path.join(root, "test")
        self._test = self._list_unlabelled(test_dir) if os.path.isdir(test_dir) else []
        self.native_splits = ("train", "test") if self._test else ("train",)

    def _validate_rows(self, rows, train_dir, classes) -> list[Record]:
        csv_name = os.path.basename(self.csv_path)
        ids = [i for i, _ in rows]
        escaping = [i for i in ids if _bad_id(i)]
        if escaping:
            raise offenders(f"ids in {csv_name} are not plain file names (paths escape train/)", escaping)
        seen, dups = set(), []
        for i in ids:
            if i in seen:
                dups.append(i)
            seen.add(i)
        if dups:
            raise offenders(f"ids in {csv_name} are duplicated", dups)
        empty = [i for i, label in rows if not label]
        if empty:
            raise offenders(f"rows of {csv_name} have an empty label", empty)
        if classes is not None:
            known = set(classes)
            unknown = sorted({label for _, label in rows if label not in known})
            if unknown:
                raise offenders(f"labels in {csv_name} are unknown (known: {', '.join(classes)})", unknown)
        present = {os.path.splitext(f)[0]: f for f in list_images(train_dir)}
        missing = [f"{i}{self.extension}" for i in ids if i not in present]
        if missing:
            raise offenders(f"files listed in {csv_name} are missing from train/", missing)
        extra = sorted(f for stem, f in present.items() if stem not in seen)
        if extra:
            raise offenders(f"files in train/ are not listed in {csv_name}", extra)
        records = []
        outside = []
        for i, label in rows:
            path = os.path.join(train_dir, present[i])
            if not is_inside(train_dir, path):
                outside.append(present[i])
            records.append(Record(i, path, label))
        if outside:
            raise offenders("files in train/ are symlinks pointing outside the data folder", outside)
        return records

    def _list_unlabelled(self, folder: str) -> list[Record]:
        records, outside = [], []
        for f in list_images(folder):
            path = os.path.join(folder, f)
            if not is_inside(folder, path):
                outside.append(f)
            records.append(Record(os.path.splitext(f)[0], path, None))
        if outside:
            raise offenders("files in test/ are symlinks pointing outside the data folder", outside)
        return sort_by_id(records)

    def records(self, split: str = "train") -> list[Record]:
        if split == "train":
            return list(self._train)
        if split == "test":
            return list(self._test)
        raise ValueError(f"{self.name} has splits train and test, not {split!r}")


def kaggle_cifar10(root: str, classes: Sequence[str] | None = None) -> KaggleCsvSource:
    """Kaggle "CIFAR-10 - Object Recognition in Images": train/<id>.png + trainLabels.csv (id,label)."""
    return KaggleCsvSource(root, "trainLabels.csv", "id", "label", ".png", classes, name="kaggle_cifar10")


def kaggle_dog(root: str, classes: Sequence[str] | None = None) -> KaggleCsvSource:
    """Kaggle "Dog Breed Identification": train/<id>.jpg + labels.csv (id,breed)."""
    return KaggleCsvSource(root, "labels.csv", "id", "breed", ".jpg", classes, name="kaggle_dog")
