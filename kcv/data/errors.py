"""One error type for bad data, with a one-line message that counts and names the first offenders."""
from __future__ import annotations

from typing import Iterable, Sequence


class DataError(ValueError):
    """Bad input data. `str(err)` is one line: what is wrong, how many, the first few offenders."""


def offenders(problem: str, items: Sequence[str] | Iterable[str], first: int = 5) -> DataError:
    """Build a DataError like `3 files listed in labels.csv are missing: a.png, b.png, c.png`."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:first])
    more = f" (and {len(items) - first} more)" if len(items) > first else ""
    return DataError(f"{len(items)} {problem}: {shown}{more}")
