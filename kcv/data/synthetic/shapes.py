"""Embedded CIFAR-10-like data: 10 classes of shapes and textures, written in the Kaggle layout.

The class lives in shape and structure; foreground and background colours, position, scale,
rotation and noise are random and independent of the class, so a classifier on mean colour
stays near chance while a small CNN learns the task. Deterministic by seed; 1,000 images take
about a second.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from kcv.data.images import encode_png

SHAPE_CLASSES = (
    "disk", "square", "triangle", "plus", "ring",
    "hstripes", "vstripes", "checker", "xcross", "dots",
)
_SS = 4  # supersampling factor for anti-aliased edges


def _mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) float mask in [0, 1] of one class instance, anti-aliased."""
    n = size * _SS
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n  # pixel centres in [0, 1]
    cy, cx = rng.uniform(0.35, 0.65, size=2)
    r = rng.uniform(0.2, 0.34)
    theta = rng.uniform(-0.5, 0.5)
    # coordinates relative to the centre, rotated by theta
    dy, dx = yy - cy, xx - cx
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    if kind == "disk":
        m = dx**2 + dy**2 <= r**2
    elif kind == "square":
        m = (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    elif kind == "triangle":
        # upright triangle: below the apex, above the base, inside two slanted edges
        h = 1.6 * r
        top = cy - h / 2
        t = (yy - top) / h
        m = (t >= 0) & (t <= 1) & (np.abs(xx - cx) <= t * r)
    elif kind == "plus":
        w = r * 0.33
        m = ((np.abs(u) <= w) & (np.abs(v) <= r)) | ((np.abs(v) <= w) & (np.abs(u) <= r))
    elif kind == "ring":
        d = np.sqrt(dx**2 + dy**2)
        m = (d <= r) & (d >= r * 0.55)
    elif kind == "hstripes":
        period = rng.uniform(0.14, 0.22)
        m = np.mod(yy + rng.uniform(0, 1), period) < period / 2
    elif kind == "vstripes":
        period = rng.uniform(0.14, 0.22)
        m = np.mod(xx + rng.uniform(0, 1), period) < period / 2
    elif kind == "checker":
        period = rng.uniform(0.2, 0.3)
        ph = rng.uniform(0, 1, size=2)
        m = (np.floor((yy + ph[0]) / (period / 2)) + np.floor((xx + ph[1]) / (period / 2))) % 2 == 0
    elif kind == "xcross":
        w = r * 0.3
        a = (u + v) / np.sqrt(2)
        b = (u - v) / np.sqrt(2)
        m = ((np.abs(a) <= w) & (np.abs(b) <= r)) | ((np.abs(b) <= w) & (np.abs(a) <= r))
    elif kind == "dots":
        m = np.zeros_like(xx, dtype=bool)
        for _ in range(int(rng.integers(3, 6))):
            py, px = rng.uniform(0.15, 0.85, size=2)
            m |= (yy - py) ** 2 + (xx - px) ** 2 <= rng.uniform(0.06, 0.09) ** 2
    else:
        raise ValueError(f"unknown shape class {kind!r}")
    return m.astype(np.float32).reshape(size, _SS, size, _SS).mean(axis=(1, 3))


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random background/foreground RGB colours with enough contrast to see the shape."""
    while True:
        bg, fg = rng.uniform(0, 255, size=(2, 3))
        if np.abs(bg - fg).sum() > 180:
            return bg, fg


def render(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 image of class `kind`."""
    mask = _mask(kind, size, rng)[..., None]
    bg, fg = _colours(rng)
    # a soft background gradient and pixel noise, so flat colour says nothing either
    ramp = np.linspace(-1, 1, size)[None, :, None] * rng.uniform(-30, 30, size=3)
    image = bg + ramp + mask * (fg - bg) + rng.normal(0, 8, size=(size, size, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def render_grey(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 grey image, Fashion-MNIST style: a bright object on a dark ground."""
    mask = _mask(kind, size, rng)
    bg, fg = rng.uniform(0, 40), rng.uniform(150, 255)
    image = bg + mask * (fg - bg) + rng.normal(0, 6, size=(size, size))
    return np.repeat(np.clip(np.round(image), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def make_images(n: int, seed: int = 0, size: int = 32, grey: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 images and (n,) int labels, classes balanced and shuffled.

    grey=True draws Fashion-MNIST-like images (bright object, dark ground, R=G=B).
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    draw = render_grey if grey else render
    images = np.stack([draw(SHAPE_CLASSES[c], size, rng) for c in labels]) if n else np.zeros((0, size, size, 3), np.uint8)
    return images, labels


def write_kaggle_cifar10(root: str, n_train: int = 1000, n_test: int = 100, seed: int = 0, size: int = 32) -> str:
    """Write the Kaggle CIFAR-10 layout: train/<id>.png, trainLabels.csv, test/<id>.png, sampleSubmission.csv.

    Ids run 1..n_train (train) and 1..n_test (test) like the competition. Returns `root`.
    """
    images, labels = make_images(n_train, seed=seed, size=size)  # balanced classes
    test_images, _ = make_images(n_test, seed=seed + 1_000_003, size=size)
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    os.makedirs(os.path.join(root, "test"), exist_ok=True)
    with open(os.path.join(root, "trainLabels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        for i in range(n_train):
            with open(os.path.join(root, "train", f"{i + 1}.png"), "wb") as img:
                img.write(encode_png(images[i]))
            w.writerow([i + 1, SHAPE_CLASSES[labels[i]]])
    with open(os.path.join(root, "sampleSubmission.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        for j in range(n_test):
            with open(os.path.join(root, "test", f"{j + 1}.png"), "wb") as img:
                img.write(encode_png(test_images[j]))
            w.writerow([j + 1, SHAPE_CLASSES[0]])
    return root


def write_class_folders(root: str, n: int = 1000, seed: int = 0, size: int = 28, grey: bool = False) -> str:
    """Write `root/<class>/<nnnn>.png` (the class-folder layout); `grey=True` for 1-channel tasks."""
    images, labels = make_images(n, seed=seed, size=size, grey=grey)
    for i, (image, c) in enumerate(zip(images, labels)):
        folder = os.path.join(root, SHAPE_CLASSES[c])
        os.makedirs(folder, exist_ok=True)
        if grey:
            image = image[..., 0]  # R = G = B: store one channel
        with open(os.path.join(folder, f"{i:05d}.png"), "wb") as f:
            f.write(encode_png(image))
    return root
