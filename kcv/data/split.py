"""Train / validation split per class, as the book's Kaggle sections do it."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

from kcv.data.errors import DataError


def valid_per_class(labels: Sequence[str], valid_ratio: float) -> int:
    """n_valid = max(1, floor(n_min * valid_ratio)), n_min the smallest class (the book's reorg)."""
    if not 0.0 < valid_ratio < 1.0:
        raise DataError(f"valid_ratio must be in (0, 1), got {valid_ratio}")
    counts = Counter(labels)
    n_min = min(counts.values())
    if n_min < 2:
        small = sorted(c for c, n in counts.items() if n < 2)
        raise DataError(f"{len(small)} classes have fewer than 2 examples, too few to split: {', '.join(small[:5])}")
    return max(1, math.floor(n_min * valid_ratio))


def split_per_class(ids: Sequence[str], labels: Sequence[str], valid_ratio: float, seed: int = 0
                    ) -> tuple[list[int], list[int]]:
    """Indices (train, valid): the same number of validation examples from every class.

    Which examples go to validation is a seeded choice within each class, independent of the
    order the source lists them in (ids are sorted first), so reruns split identically.
    """
    n_valid = valid_per_class(labels, valid_ratio)
    by_class: dict[str, list[int]] = defaultdict(list)
    for index in sorted(range(len(ids)), key=lambda i: ids[i]):
        by_class[labels[index]].append(index)
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for label in sorted(by_class):
        members = by_class[label]
        order = rng.permutation(len(members))
        valid.extend(members[j] for j in order[:n_valid])
        train.extend(members[j] for j in order[n_valid:])
    return sorted(train), sorted(valid)


def split_random(n: int, valid_ratio: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices (train, valid) for unlabelled data: a seeded max(1, floor(n * valid_ratio)) held out."""
    if not 0.0 < valid_ratio < 1.0:
        raise DataError(f"valid_ratio must be in (0, 1), got {valid_ratio}")
    if n < 2:
        raise DataError(f"need at least 2 examples to split, found {n}")
    n_valid = max(1, math.floor(n * valid_ratio))
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_valid:].tolist()), sorted(order[:n_valid].tolist())


def sample_per_class(ids: Sequence[str], labels: Sequence[str], n: int, seed: int = 0) -> list[int]:
    """Indices of a seeded sample of `n` labelled examples, spread as evenly over the classes as they allow.

    Every class gets floor(n / K) or one more (classes drawn by the seed get the extra ones); a
    class with fewer examples gives all of them and the rest is spread over the others. Within a
    class the choice is seeded and independent of the order the source lists examples in (ids are
    sorted first). Returns sorted indices. DataError when there are fewer than `n` examples.
    """
    if n < 1:
        raise DataError(f"sample size must be >= 1, got {n}")
    if n > len(ids):
        raise DataError(f"asked for {n} labelled examples, the data has {len(ids)}")
    by_class: dict[str, list[int]] = defaultdict(list)
    for index in sorted(range(len(ids)), key=lambda i: ids[i]):
        by_class[labels[index]].append(index)
    rng = np.random.default_rng(seed)
    classes = sorted(by_class)
    quota = dict.fromkeys(classes, 0)
    order = [classes[i] for i in rng.permutation(len(classes))]  # who gets the extras: seeded
    left = n
    while left:  # round robin: one more per class and round, capped by what each class has
        for c in order:
            if left and quota[c] < len(by_class[c]):
                quota[c] += 1
                left -= 1
    chosen = []
    for c in classes:
        members = by_class[c]
        chosen.extend(members[j] for j in rng.permutation(len(members))[:quota[c]])
    return sorted(chosen)
