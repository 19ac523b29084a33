"""Image grids: many images (n, H, W, C) tiled into one picture, optionally saved as PNG."""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np


def to_uint8(images: Any, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """uint8 images from uint8 (unchanged) or floats in `value_range` (clipped, rounded)."""
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    lo, hi = value_range
    scaled = (arr.astype(np.float64) - lo) * (255.0 / (hi - lo))
    return np.clip(np.round(np.nan_to_num(scaled, nan=0.0)), 0, 255).astype(np.uint8)


def image_grid(images: Any, ncols: int = 8, path: str | None = None, padding: int = 2,
               pad_value: int = 255, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Tile images (n, H, W, C) or (n, H, W) row by row into ceil(n / ncols) rows of `ncols`.

    uint8 input is used as is; float input is mapped from `value_range` (the generator's tanh
    range by default). Cells are separated by `padding` pixels of `pad_value`; empty cells in the
    last row stay `pad_value`. Returns the grid, uint8 (rows*(H+p)+p, ncols*(W+p)+p, C), and
    writes it as PNG to `path` when given (folders are created).
    """
    arr = to_uint8(images, value_range)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or len(arr) == 0:
        raise ValueError(f"image_grid: need images (n >= 1, H, W[, C]); got shape {np.shape(images)}")
    if ncols < 1:
        raise ValueError(f"image_grid: ncols must be >= 1, got {ncols}")
    n, h, w, c = arr.shape
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c),
                   pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = arr[i]
    if path is not None:
        from PIL import Image

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        Image.fromarray(grid[..., 0] if c == 1 else grid).save(path)
    return grid
