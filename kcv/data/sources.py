"""Data sources: Kaggle CSV folders, class folders and tensorflow-datasets.

Every source lists `Record`s (stable id, file path, label), knows its label vocabulary, validates
its layout before anything reads pixels, and yields `(id, image uint8 (H, W, 3), label)`.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from typing import Iterator, Sequence

import numpy as np

from kcv.data.errors import DataError, offenders
from kcv.data.images import IMAGE_EXTENSIONS, load_rgb


@dataclasses.dataclass(frozen=True)
class Record:
    """One example: a stable id, where its image lives, and its label (None when unlabelled)."""

    id: str
    path: str | None
    label: str | None


class Source:
    """Base class: subclasses fill `records()`; reading, validation and iteration are shared."""

    name = "source"
    #: splits a source provides itself (a tfds test split); others are split by ExampleGen
    native_splits: tuple[str, ...] = ("train",)

    def records(self, split: str = "train") -> list[Record]:
        raise NotImplementedError

    def labels(self) -> list[str]:
        """The label vocabulary: sorted distinct labels of the train split."""
        return sorted({r.label for r in self.records("train") if r.label is not None})

    def read(self, record: Record) -> np.ndarray:
        """The record's image as (H, W, 3) uint8."""
        return load_rgb(record.path)

    def validate(self, read_images: bool = True) -> None:
        """Check layout (in the constructor) and, if asked, decode every image fully.

        Raises DataError naming the count and the first unreadable files.
        """
        if not read_images:
            return
        bad = []
        for split in self.native_splits:
            for record in self.records(split):
                try:
                    self.read(record)
                except (ValueError, OSError) as err:
                    bad.append(str(err))
        if bad:
            raise offenders("images are unreadable", bad)

    def iter_examples(self, split: str = "train") -> Iterator[tuple[str, np.ndarray, str | None]]:
        for record in self.records(split):
            yield record.id, self.read(record), record.label


def _check_inside(root: str, path: str) -> bool:
    """True if `path` (after resolving symlinks) stays inside `root`."""
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def _bad_id(image_id: str) -> bool:
    return (
        not image_id
        or os.path.isabs(image_id)
        or "/" in image_id
        or "\\" in image_id
        or image_id in (".", "..")
        or ".." in image_id.split(os.sep)
    )


def _list_images(folder: str) -> list[str]:
    return sorted(
        f for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
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


class KaggleCsvSource(Source):
    """Kaggle competition layout: `train/<id>.<ext>` + a label CSV, optional `test/<id>.<ext>`.

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
        present = {os.path.splitext(f)[0]: f for f in _list_images(train_dir)}
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
            if not _check_inside(train_dir, path):
                outside.append(present[i])
            records.append(Record(i, path, label))
        if outside:
            raise offenders("files in train/ are symlinks pointing outside the data folder", outside)
        return records

    def _list_unlabelled(self, folder: str) -> list[Record]:
        records, outside = [], []
        for f in _list_images(folder):
            path = os.path.join(folder, f)
            if not _check_inside(folder, path):
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


def sort_by_id(records: list[Record]) -> list[Record]:
    """Numeric ids in numeric order (Kaggle CIFAR-10: 1, 2, ..., 10), others as strings after."""
    return sorted(records, key=lambda r: (0, int(r.id), "") if r.id.isdigit() else (1, 0, r.id))


def kaggle_cifar10(root: str, classes: Sequence[str] | None = None) -> KaggleCsvSource:
    """Kaggle "CIFAR-10 - Object Recognition in Images": train/<id>.png + trainLabels.csv (id,label)."""
    return KaggleCsvSource(root, "trainLabels.csv", "id", "label", ".png", classes, name="kaggle_cifar10")


def kaggle_dog(root: str, classes: Sequence[str] | None = None) -> KaggleCsvSource:
    """Kaggle "Dog Breed Identification": train/<id>.jpg + labels.csv (id,breed)."""
    return KaggleCsvSource(root, "labels.csv", "id", "breed", ".jpg", classes, name="kaggle_dog")


class ClassFolderSource(Source):
    """`root/<class>/*.{png,jpg,jpeg}`; ids are `<class>/<file stem>`.

    With `labelled=False` a flat folder (or class folders whose names are ignored) is read
    unlabelled, e.g. sprite collections for a GAN.
    """

    name = "class_folders"

    def __init__(self, root: str, classes: Sequence[str] | None = None, labelled: bool = True):
        if not os.path.isdir(root):
            raise DataError(f"data folder not found: {root}")
        self.root = root
        records, outside = [], []
        class_dirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
        loose = _list_images(root)
        if labelled and loose:
            raise offenders(f"images in {root} are not inside a class folder", loose)
        for f in loose:
            records.append((os.path.splitext(f)[0], os.path.join(root, f), None))
        for d in class_dirs:
            folder = os.path.join(root, d)
            for f in _list_images(folder):
                records.append((f"{d}/{os.path.splitext(f)[0]}", os.path.join(folder, f), d if labelled else None))
        if not records:
            raise DataError(f"{root}: no images found (expected <class>/*.png|jpg|jpeg)")
        ids = [r[0] for r in records]
        dups = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        if dups:
            raise offenders("images share an id (same name, different extension)", dups)
        for _, path, _ in records:
            if not _check_inside(root, path):
                outside.append(os.path.relpath(path, root))
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


class TfdsSource(Source):
    """A tensorflow-datasets dataset read from `data_dir`; never downloads unless `download=True`."""

    def __init__(self, name: str, data_dir: str | None = None, download: bool = False,
                 image_key: str = "image", label_key: str = "label"):
        import tensorflow_datasets as tfds

        self.name, self.data_dir = name, data_dir
        self._image_key, self._label_key = image_key, label_key
        try:
            self._builder = tfds.builder(name, data_dir=data_dir)
        except Exception as err:  # tfds raises its own DatasetNotFoundError types
            raise DataError(f"tensorflow-datasets has no dataset {name!r} ({type(err).__name__})") from None
        if not self._builder.is_prepared():
            if not download:
                where = data_dir or "the default tensorflow_datasets folder"
                raise DataError(
                    f"tfds dataset {name!r} is not prepared in {where}: point data_dir (--data_dir) at a "
                    f"folder that holds it, or allow download=True (--download)"
                )
            self._builder.download_and_prepare()
        info = self._builder.info
        self.native_splits = tuple(s for s in ("train", "test") if s in info.splits)
        self._names = list(info.features[label_key].names)
        self._cache: dict[str, list[tuple[str, np.ndarray, str]]] = {}

    def labels(self) -> list[str]:
        # tfds label ids are the class order; keep it (fashion_mnist: T-shirt/top, Trouser, ...).
        return list(self._names)

    def _load(self, split: str):
        if split not in self._cache:
            import tensorflow_datasets as tfds

            ds = self._builder.as_dataset(split=split, shuffle_files=False)
            rows = []
            for i, ex in enumerate(tfds.as_numpy(ds)):
                image = ex[self._image_key]
                if image.ndim == 2 or image.shape[-1] == 1:
                    image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=-1)
                rows.append((f"{split}-{i:06d}", image.astype(np.uint8), self._names[int(ex[self._label_key])]))
            self._cache[split] = rows
        return self._cache[split]

    def records(self, split: str = "train") -> list[Record]:
        return [Record(i, None, label) for i, _, label in self._load(split)]

    def validate(self, read_images: bool = True) -> None:
        return None  # tfds checks its own files

    def iter_examples(self, split: str = "train"):
        yield from self._load(split)


def _points(root: str) -> Source:
    from kcv.data.points import PointsCsvSource  # points.py builds on this module

    return PointsCsvSource(root)


def _bananas(root: str) -> Source:
    from kcv.data.detection_source import BananasSource

    return BananasSource(root)


def open_source(spec: str, data_dir: str | None = None, download: bool = False,
                classes: Sequence[str] | None = None) -> Source:
    """Open a source: `kaggle_cifar10`, `kaggle_dog`, `class_folders`, `images`, `points_csv` or `tfds:<name>`.

    File sources read `data_dir`; tfds sources read prepared data from `data_dir`.
    """
    if spec.startswith("tfds:"):
        return TfdsSource(spec[len("tfds:"):], data_dir=data_dir, download=download)
    if data_dir is None:
        raise DataError(f"source {spec!r} needs a data folder (data_dir)")
    openers = {
        "kaggle_cifar10": lambda: kaggle_cifar10(data_dir, classes),
        "kaggle_dog": lambda: kaggle_dog(data_dir, classes),
        "class_folders": lambda: ClassFolderSource(data_dir, classes),
        "images": lambda: ClassFolderSource(data_dir, labelled=False),
        "points_csv": lambda: _points(data_dir),
        "bananas": lambda: _bananas(data_dir),
    }
    if spec not in openers:
        raise DataError(f"unknown data source {spec!r}; use one of {', '.join(openers)} or tfds:<name>")
    return openers[spec]()
