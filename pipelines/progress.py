"""Progress of long loops in the binaries: a bar on a terminal, a line every 10% otherwise.

    progress = Progress(total=10_000, label="kcv-predict", unit="images")
    for batch in batches:
        ...
        progress.update(len(batch))
    progress.close()

On a terminal the bar is redrawn in place (count, rate, time left); in logs (not a terminal) one
line is printed at each 10% step, so a 300,000-image run stays readable.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts work done out of `total`; `update(n)` after each piece, `close()` at the end."""

    WIDTH = 30

    def __init__(self, total: int, label: str, unit: str = "items", stream: TextIO | None = None,
                 interactive: bool | None = None, clock=time.monotonic):
        self.total, self.label, self.unit = max(0, int(total)), label, unit
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.clock = clock
        self.start = clock()
        self.done = 0
        self._last_decile = 0
        self._closed = False

    def line(self) -> str:
        """`label: done/total unit (pct%), rate unit/s, elapsed, time left`."""
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = _duration(left) if left != float("inf") else "?"
        text = (f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), {rate:.1f} {self.unit}/s, "
                f"elapsed {_duration(elapsed)}, left {eta}")
        if self.interactive:
            filled = int(self.WIDTH * self.done / self.total) if self.total else self.WIDTH
            text = f"[{'=' * filled}{'.' * (self.WIDTH - filled)}] {text}"
        return text

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + int(n)) if self.total else self.done + int(n)
        if self.interactive:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            return
        decile = int(10 * self.done / self.total) if self.total else 10
        if decile > self._last_decile:  # one line per 10% step reached
            self._last_decile = decile
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.interactive:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
        elif self._last_decile < 10:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
