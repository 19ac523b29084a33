"""Figures as pixels and the book's training curves.

`figure_to_array` renders a matplotlib Figure (Agg canvas, no pyplot) to uint8 RGB (H, W, 3), the
form `tf.summary.image` takes; `training_curves` is the book's per-epoch plot from a Keras History
dict ({"loss": [...], "accuracy": [...], ...}).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# What each kind of model's curves show, in the book's order: classifiers loss / train acc /
# valid acc, the GAN its two losses, TinySSD its loss terms.
CURVE_KEYS: tuple[str, ...] = ("loss", "accuracy", "val_accuracy", "d_loss", "g_loss", "class err", "bbox mae")
LABELS = {"loss": "train loss", "accuracy": "train acc", "val_accuracy": "valid acc"}


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render `fig` -> uint8 RGB (H, W, 3)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def training_curves(history: Mapping[str, Sequence[float]], keys: Sequence[str] | None = None,
                    title: str | None = None) -> Figure:
    """One axis, one line per series (epochs,) against epoch 1..n.

    keys: the series to draw; by default those of CURVE_KEYS present in `history`, else every
    series (so an unknown model still gets a picture).
    """
    if keys is None:
        keys = [k for k in CURVE_KEYS if k in history] or sorted(history)
    fig = Figure(figsize=(4.5, 3.2), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key in keys:
        values = np.asarray(history[key], dtype=np.float64).reshape(-1)
        ax.plot(np.arange(1, len(values) + 1), values, "-o" if len(values) < 2 else "-",
                label=LABELS.get(key, key), markersize=4)
    epochs = max((len(np.reshape(history[k], -1)) for k in keys), default=1)
    ax.set_xlim(0.5, epochs + 0.5)  # a one-epoch run still gets the tick "1", not 0.99..1.01
    ax.set_xlabel("epoch")
    if epochs <= 10:  # epochs are whole numbers; MaxNLocator falls back to fractions on tiny ranges
        ax.set_xticks(np.arange(1, epochs + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if keys:
        ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig
