"""Kaggle competition folders: `train/<id>.<ext>` + a label CSV, optional unlabelled `test/`.

`write_tiny` copies a seeded sample of such a folder into a new one of the same layout: the sizes
the book's demos use (`TINY_SIZES["book"]`: 1000 labelled training images and 5 test images, as
`kaggle_cifar10_tiny.zip` has them) or those of the Chinese edition's `train_tiny` / `test_tiny`
(`TINY_SIZES["zh"]`: 80 and 100).
"""
from __future__ import annotations

import csv
import os
import shutil
import tempfile
from typing import Sequence

import numpy as np

from kcv.data.errors import DataError, offenders
from kcv.data.sources.base import Record, Source
from kcv.data.sources.files import is_inside, list_images
from kcv.data.split import sample_per_class

# name -> (labelled training images, test images)
TINY_SIZES: dict[str, tuple[int, int]] = {"book": (1000, 5), "zh": (80, 100)}


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
        sample_submission: str | None = None,
    ):
        self.root, self.name, self.extension = root, name, extension
        self.csv_path = os.path.join(root, csv_name)
        self.csv_name, self.id_column, self.label_column = csv_name, id_column, label_column
        self.sample_submission = sample_submission
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
    return KaggleCsvSource(root, "trainLabels.csv", "id", "label", ".png", classes, name="kaggle_cifar10",
                           sample_submission="sampleSubmission.csv")


def kaggle_dog(root: str, classes: Sequence[str] | None = None) -> KaggleCsvSource:
    """Kaggle "Dog Breed Identification": train/<id>.jpg + labels.csv (id,breed)."""
    return KaggleCsvSource(root, "labels.csv", "id", "breed", ".jpg", classes, name="kaggle_dog",
                           sample_submission="sample_submission.csv")


def _inside(path: str, folder: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, base]) == base


def write_tiny(source: KaggleCsvSource, out: str, n_train: int, n_test: int, seed: int = 0) -> dict:
    """Copy a seeded sample of `source` into the new folder `out`, in the same Kaggle layout.

    n_train labelled images spread evenly over the classes (kcv.data.split.sample_per_class),
    n_test of test/ (a seeded choice), the label CSV with the source's header (rows sorted by id)
    and, when the source has one, its sample submission's header and the rows of the chosen test
    ids. The image files are copied byte for byte under their ids. Deterministic in (source, sizes,
    seed). Atomic: written into a hidden temporary beside `out` and renamed, so `out` is complete
    or absent. DataError (one line) when `out` exists and is not an empty folder, lies inside the
    source's train/ or test/, or the source has too few images. Returns the counts written.
    """
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise DataError(f"{out} exists and is not an empty folder: choose a new output folder")
    for split in ("train", "test"):
        if _inside(os.path.join(out, "x"), os.path.join(source.root, split)):
            raise DataError(f"{out} is inside the source's {split}/ folder: choose an output folder outside it")
    train = source.records("train")
    test = source.records("test") if "test" in source.native_splits else []
    if n_train > len(train):
        raise DataError(f"{source.root} has {len(train)} labelled images, fewer than the {n_train} asked for")
    if n_test > len(test):
        raise DataError(f"{source.root}/test has {len(test)} images, fewer than the {n_test} asked for")
    chosen = [train[i] for i in sample_per_class([r.id for r in train], [r.label for r in train], n_train, seed)]
    rng = np.random.default_rng([seed, 1])  # another stream than the training sample's
    picked = sorted(rng.permutation(len(test))[:n_test].tolist()) if n_test else []
    test_chosen = sort_by_id([test[i] for i in picked])
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(os.path.abspath(out))}.tmp-")
    try:
        staging = os.path.join(tmp, "data")
        os.mkdir(staging)  # the umask's access, not mkdtemp's owner-only
        for split, records in (("train", chosen), ("test", test_chosen)):
            folder = os.path.join(staging, split)
            os.mkdir(folder)
            for r in records:
                shutil.copyfile(r.path, os.path.join(folder, os.path.basename(r.path)))
        with open(os.path.join(staging, source.csv_name), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([source.id_column, source.label_column])
            writer.writerows([r.id, r.label] for r in sort_by_id(chosen))
        sample = os.path.join(source.root, source.sample_submission or "")
        wrote_sample = False
        if source.sample_submission and os.path.isfile(sample) and test_chosen:
            with open(sample, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
            wanted = {r.id for r in test_chosen}
            kept = {row[0]: row for row in rows[1:] if row and row[0] in wanted}
            if rows and len(kept) == len(wanted):  # else the source's sample does not cover these ids
                with open(os.path.join(staging, source.sample_submission), "w", newline="") as f:
                    csv.writer(f).writerows([rows[0], *(kept[r.id] for r in test_chosen)])
                wrote_sample = True
        if os.path.isdir(out):
            os.rmdir(out)  # empty: checked above
        os.rename(staging, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_class: dict[str, int] = {}
    for r in chosen:
        per_class[r.label] = per_class.get(r.label, 0) + 1
    return {"train": len(chosen), "test": len(test_chosen), "classes": len(per_class),
            "per_class": dict(sorted(per_class.items())),
            "sample_submission": source.sample_submission if wrote_sample else None}
