"""The embedded data generators by name, each with the source spec that reads what it writes.

`write(name, folder, n, seed)` generates a data set once: concurrent callers (two pipelines sharing
a root) each build into their own temporary sibling and the first rename wins; the content is
deterministic in (name, n, seed), so the losers' copies are equal and simply discarded.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import Callable

from kcv.data.sources.points import write_points_csv
from kcv.data.synthetic import bananas, dogs, shapes, sprites, toy_gaussian


@dataclasses.dataclass(frozen=True)
class Generator:
    """`fn(folder, n, seed)` writes n examples into folder in the layout `source` (an open_source spec) reads."""

    name: str
    fn: Callable[[str, int, int], object]
    source: str


def _generators(*items: Generator) -> dict[str, Generator]:
    return {g.name: g for g in items}


GENERATORS: dict[str, Generator] = _generators(
    Generator("shapes_kaggle_cifar10", lambda root, n, seed: shapes.write_kaggle_cifar10(
        root, n_train=n, n_test=20, seed=seed), "kaggle_cifar10"),
    Generator("shapes_grey_folders", lambda root, n, seed: shapes.write_class_folders(
        root, n=n, seed=seed, size=28, grey=True), "class_folders"),
    Generator("toy_gaussian_points", lambda root, n, seed: write_points_csv(
        root, toy_gaussian.make_data(n, seed=seed)), "points_csv"),
    Generator("sprites", lambda root, n, seed: sprites.write_sprites(root, count=n, seed=seed), "images"),
    Generator("bananas", lambda root, n, seed: bananas.write_bananas(
        root, num_train=n, num_val=max(20, n // 10), seed=seed), "bananas"),
    Generator("dogs_kaggle", lambda root, n, seed: dogs.write_kaggle_dog(
        root, n_train=n, n_test=20, num_breeds=5, seed=seed), "kaggle_dog"),
)


def list_generators() -> list[str]:
    """The generator names, in registry order."""
    return list(GENERATORS)


def get_generator(name: str) -> Generator:
    """The named generator; ValueError naming the known ones."""
    if name not in GENERATORS:
        raise ValueError(f"unknown embedded data generator {name!r}; use one of {', '.join(GENERATORS)}")
    return GENERATORS[name]


def write(name: str, folder: str, n: int, seed: int = 0) -> str:
    """Generate `name` (n examples, seed) into `folder` unless it exists; return `folder`.

    Safe when several processes write the same folder at once: each generates into a temporary
    sibling of its own and renames it into place; whoever finds the folder already there deletes
    only its own temporary. Only temporaries this call created are ever deleted.
    """
    generator = get_generator(name)
    if os.path.isdir(folder):
        return folder
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    # Hidden and unique per call, so readers listing `parent` and other writers never see it.
    tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(os.path.abspath(folder)) + ".tmp-")
    try:
        # mkdtemp's folder is owner-only; a plain mkdir inside it gets the umask's access, as
        # the data set should once renamed into place.
        staging = os.path.join(tmp, "data")
        os.mkdir(staging)
        generator.fn(staging, n, seed)
        try:
            os.rename(staging, folder)
        except OSError:
            if not os.path.isdir(folder):
                raise
            # Another writer won the race; its copy is the same data.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary only: mkdtemp made it for us
    return folder
