"""Data sources: Kaggle CSV folders, class folders, points, banana detection and tensorflow-datasets.

Every source implements `kcv.data.sources.base.Source`: `records(split)`, `labels()`,
`read(record)`, `validate()`, `native_splits`, `eval_split` and `load(split)` ->
`SourceExample`s. `open_source(spec, data_dir)` opens one by name.
"""
from __future__ import annotations

from typing import Callable, Sequence

from kcv.data.errors import DataError
from kcv.data.sources.bananas import BananaRecord, BananasSource, load_bananas, read_bananas, records_to_labels
from kcv.data.sources.base import Record, Source, SourceExample, encoded_image
from kcv.data.sources.class_folders import ClassFolderSource
from kcv.data.sources.kaggle import KaggleCsvSource, kaggle_cifar10, kaggle_dog, read_label_csv, sort_by_id
from kcv.data.sources.points import PointsCsvSource, write_points_csv
from kcv.data.sources.tfds import TfdsSource

__all__ = [
    "SOURCE_SPECS", "BananaRecord", "BananasSource", "ClassFolderSource", "KaggleCsvSource",
    "PointsCsvSource", "Record", "Source", "SourceExample", "TfdsSource", "encoded_image",
    "kaggle_cifar10", "kaggle_dog", "load_bananas", "open_source", "read_bananas", "read_label_csv",
    "records_to_labels", "sort_by_id", "write_points_csv",
]

# spec -> opener(data_dir, classes); the file layouts open_source knows besides tfds:<name>.
_OPENERS: dict[str, Callable[[str, Sequence[str] | None], Source]] = {
    "kaggle_cifar10": kaggle_cifar10,
    "kaggle_dog": kaggle_dog,
    "class_folders": lambda root, classes: ClassFolderSource(root, classes),
    "images": lambda root, classes: ClassFolderSource(root, labelled=False),
    "points_csv": lambda root, classes: PointsCsvSource(root),
    "bananas": lambda root, classes: BananasSource(root),
}
SOURCE_SPECS: tuple[str, ...] = tuple(_OPENERS)


def open_source(spec: str, data_dir: str | None = None, download: bool = False,
                classes: Sequence[str] | None = None) -> Source:
    """Open a source: one of SOURCE_SPECS (kaggle_cifar10, kaggle_dog, class_folders, images,
    points_csv, bananas) reading `data_dir`, or `tfds:<name>` reading prepared data from `data_dir`.

    `classes` restricts the labels of the labelled file layouts (e.g. to a model's vocabulary).
    """
    if spec.startswith("tfds:"):
        return TfdsSource(spec[len("tfds:"):], data_dir=data_dir, download=download)
    if spec not in _OPENERS:
        raise DataError(f"unknown data source {spec!r}; use one of {', '.join(SOURCE_SPECS)} or tfds:<name>")
    if data_dir is None:
        raise DataError(f"source {spec!r} needs a data folder (data_dir)")
    return _OPENERS[spec](data_dir, classes)
