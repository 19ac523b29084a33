"""Boxes and anchors drawn on images with matplotlib (Agg canvas, no pyplot global state).

`bbox_to_rect` and `show_bboxes` are the book's helpers (bounding-box.md, anchor.md): colours
cycle b, g, r, m, c; a label sits on the box's top-left corner in white on the box colour
(black on white boxes). `box_figure` puts one image with several box sets side by side, and
`save_figure` writes a file atomically (temporary file, then rename).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

BOOK_COLORS = ("b", "g", "r", "m", "c")


def bbox_to_rect(bbox: Sequence[float], color: str) -> Rectangle:
    """xyxy box (pixels) -> unfilled matplotlib Rectangle with line width 2."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return Rectangle(xy=(x1, y1), width=x2 - x1, height=y2 - y1, fill=False, edgecolor=color, linewidth=2)


def _as_list(obj, default=None) -> Optional[list]:
    if obj is None:
        return None if default is None else list(default)
    if isinstance(obj, (list, tuple)):
        return list(obj)
    return [obj]


def show_bboxes(axes, bboxes, labels=None, colors=None) -> None:
    """Draw (N, 4) xyxy pixel boxes on `axes` with optional labels, like the book's helper."""
    labels = _as_list(labels)
    colors = _as_list(colors, BOOK_COLORS)
    for i, bbox in enumerate(np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)):
        color = colors[i % len(colors)]
        rect = bbox_to_rect(bbox, color)
        axes.add_patch(rect)
        if labels and len(labels) > i:
            text_color = "k" if color == "w" else "w"
            axes.text(
                rect.xy[0], rect.xy[1], labels[i], va="center", ha="center", fontsize=9,
                color=text_color, bbox=dict(facecolor=color, lw=0),
            )


def to_pixels(boxes, image_shape: Sequence[int]) -> np.ndarray:
    """Normalised xyxy (..., 4) -> pixel xyxy for an image of shape (H, W, ...): times (W, H, W, H)."""
    height, width = int(image_shape[0]), int(image_shape[1])
    return np.asarray(boxes, dtype=np.float64) * np.array([width, height, width, height], np.float64)


@dataclasses.dataclass(frozen=True)
class BoxPanel:
    """One panel: pixel xyxy boxes (N, 4), optional labels/colours (book defaults) and a title."""

    boxes: np.ndarray
    labels: Optional[Sequence[str]] = None
    colors: Optional[Sequence[str]] = None
    title: Optional[str] = None
    # Extra box sets drawn on the same panel, e.g. ground truth in black over anchors.
    extra: Sequence["BoxPanel"] = ()
    # Pixel points (K, 2) as (x, y) to mark, e.g. the centre of a set of anchors.
    points: Optional[np.ndarray] = None


def _view_limits(panels: Sequence[BoxPanel], width: int, height: int) -> tuple[float, float, float, float]:
    """Image extent grown to hold every box (anchors are not clipped, so they may stick out)."""
    x0, y0, x1, y1 = -0.5, -0.5, width - 0.5, height - 0.5
    for panel in panels:
        for layer in (panel, *panel.extra):
            boxes = np.asarray(layer.boxes, dtype=np.float64).reshape(-1, 4)
            if len(boxes):
                x0, y0 = min(x0, boxes[:, 0].min()), min(y0, boxes[:, 1].min())
                x1, y1 = max(x1, boxes[:, 2].max()), max(y1, boxes[:, 3].max())
    margin = 0.03 * max(width, height)
    grown = (x0, y0, x1, y1) != (-0.5, -0.5, width - 0.5, height - 0.5)
    if grown:
        x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    return x0, y0, x1, y1


def box_figure(image: np.ndarray, panels: Sequence[BoxPanel], panel_width: float = 5.0, fit_boxes: bool = True) -> Figure:
    """Image (H, W, 3) uint8 or float in [0, 1] shown once per panel with that panel's boxes.

    With `fit_boxes` the view grows to show boxes that reach outside the image whole.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W, C) with C in 1, 3, 4, got shape {image.shape}")
    if not panels:
        raise ValueError("box_figure needs at least one panel")
    height, width = image.shape[:2]
    x0, y0, x1, y1 = _view_limits(panels, width, height) if fit_boxes else (-0.5, -0.5, width - 0.5, height - 0.5)
    panel_height = panel_width * (y1 - y0) / (x1 - x0) + (0.4 if any(p.title for p in panels) else 0.0)
    fig = Figure(figsize=(panel_width * len(panels), panel_height), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    shown = image[..., 0] if image.shape[-1] == 1 else image
    for ax, panel in zip(axes, panels):
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        for layer in (panel, *panel.extra):
            show_bboxes(ax, layer.boxes, layer.labels, layer.colors)
        if panel.points is not None:
            points = np.asarray(panel.points, dtype=np.float64).reshape(-1, 2)
            ax.plot(points[:, 0], points[:, 1], "o", color="yellow", markeredgecolor="k", markersize=6)
        if panel.title:
            ax.set_title(panel.title, fontsize=10, pad=14)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)  # image rows grow downwards
        ax.axis("off")
    fig.tight_layout()
    return fig


def draw_boxes(image: np.ndarray, boxes, labels=None, colors=None, title: Optional[str] = None) -> Figure:
    """One-panel `box_figure`: pixel xyxy `boxes` (N, 4) on `image`."""
    return box_figure(image, [BoxPanel(np.asarray(boxes), labels, colors, title)])


def save_figure(fig: Figure, path: str) -> None:
    """Write `fig` to `path` (format from the extension) atomically: no partial file on failure."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    supported = fig.canvas.get_supported_filetypes()
    if ext not in supported:
        raise ValueError(f"unsupported image format '.{ext}' for {path}; use one of {', '.join(sorted(supported))}")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="." + ext)
    os.close(fd)
    try:
        fig.savefig(tmp, format=ext)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
