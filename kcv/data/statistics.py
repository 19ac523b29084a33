"""Statistics of a split that the model is built with (the Transform component's numbers)."""
from __future__ import annotations

import numpy as np

from kcv.data.input import classification_dataset


def image_statistics(source: str | list[str], *, image_size: tuple[int, int], channels: int,
                     resize_mode: str = "stretch") -> dict:
    """Per-channel mean and population std of a split's images at the model's size, values 0-255.

    Returns {"mean": [C], "std": [C], "image_size": [H, W], "channels": C}.
    """
    ds = classification_dataset(source, batch_size=256, training=False, image_size=image_size,
                                channels=channels, resize_mode=resize_mode, cache=False)
    total = np.zeros(channels, np.float64)
    total_sq = np.zeros(channels, np.float64)
    pixels = 0
    for images, _ in ds:
        x = images.numpy().astype(np.float64)
        total += x.sum(axis=(0, 1, 2))
        total_sq += (x**2).sum(axis=(0, 1, 2))
        pixels += x.shape[0] * x.shape[1] * x.shape[2]
    if pixels == 0:
        raise ValueError(f"{source} is empty")
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-12))
    return {"mean": mean.tolist(), "std": std.tolist(), "image_size": list(image_size), "channels": channels}
