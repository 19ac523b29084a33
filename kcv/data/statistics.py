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


def patch_covariance(source: str | list[str], *, image_size: tuple[int, int], channels: int, mean: list[float],
                     std: list[float], patch_size: int = 2, max_images: int = 5000,
                     resize_mode: str = "stretch") -> list[list[float]]:
    """Second moments E[p p^T] of the normalised images' patch_size x patch_size patches.

    Every patch of the first `max_images` images of the split (in its stored order, so the same
    images every run), each image normalised by (x - mean) / std per channel, flattened in
    (row, column, channel) order: the layout of a Keras conv kernel (kh, kw, C). Uncentred, as
    airbench estimates it (normalised images are near zero-mean). Returns a (p*p*C, p*p*C) list;
    `kcv.layers.whitening.whitening_kernel` turns it into the whitening stem's filters.
    """
    if patch_size < 1 or max_images < 1:
        raise ValueError(f"patch_covariance: patch_size and max_images must be >= 1, got {patch_size}, {max_images}")
    ds = classification_dataset(source, batch_size=256, training=False, image_size=image_size,
                                channels=channels, resize_mode=resize_mode, cache=False)
    mean_, std_ = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    size = patch_size * patch_size * channels
    moments = np.zeros((size, size), np.float64)
    patches = images_seen = 0
    for images, _ in ds:
        x = (images.numpy()[: max_images - images_seen].astype(np.float64) - mean_) / std_  # (B, H, W, C)
        windows = np.lib.stride_tricks.sliding_window_view(x, (patch_size, patch_size), axis=(1, 2))
        flat = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size)  # (B * H' * W', p * p * C), (row, col, c)
        moments += flat.T @ flat
        patches += len(flat)
        images_seen += len(x)
        if images_seen >= max_images:
            break
    if patches == 0:
        raise ValueError(f"{source} has no {patch_size}x{patch_size} patches")
    return (moments / patches).tolist()
