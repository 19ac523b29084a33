"""Training augmentation in tf.data, on whole batches where the images share a size.

Batched ops (one crop_and_resize per batch) run ~10x faster than per-image maps on CPU. Every
function takes float32 images in [0, 255] and a stateless seed (2,) int64, so a run repeats
exactly and a resumed run can replay the same draws.
"""
from __future__ import annotations

import math

import tensorflow as tf

AUGMENTATIONS = ("none", "flip", "cifar", "translate", "imagenet")


def _uniform(seed: tf.Tensor, shape, lo: float, hi: float, salt: int) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed + salt, minval=lo, maxval=hi)


def random_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Horizontal flip with probability 1/2, per image. images: (B, H, W, C)."""
    batch = tf.shape(images)[0]
    flip = _uniform(seed, (batch, 1, 1, 1), 0.0, 1.0, 7) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def cifar_augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """The book's CIFAR-10 training transform on a batch (B, H, W, C) -> same shape.

    Book: Resize(40), RandomResizedCrop(32, scale=(0.64, 1), ratio=(1, 1)), RandomHorizontalFlip.
    Here the square crop (area fraction uniform in [0.64, 1] of the image, so side in [0.8, 1])
    is taken in normalised coordinates and resampled straight to the output size with the flip
    folded into the box (x1 > x2 mirrors), one bilinear resample instead of two.
    """
    batch = tf.shape(images)[0]
    size = tf.shape(images)[1:3]
    area = _uniform(seed, (batch,), 0.64, 1.0, 1)
    side = tf.sqrt(area)
    y0 = _uniform(seed, (batch,), 0.0, 1.0, 2) * (1.0 - side)
    x0 = _uniform(seed, (batch,), 0.0, 1.0, 3) * (1.0 - side)
    flip = _uniform(seed, (batch,), 0.0, 1.0, 4) < 0.5
    x1 = tf.where(flip, x0 + side, x0)
    x2 = tf.where(flip, x0, x0 + side)
    return crop_resize(images, y0, x1, y0 + side, x2, size)


def random_translate(images: tf.Tensor, seed: tf.Tensor, pad: int = 2) -> tf.Tensor:
    """Shift each image by up to `pad` pixels each way, the border filled by reflection.

    The fast CIFAR-10 recipes' (airbench, ResNet-9) translate: reflect-pad by `pad`, then take
    a random (H, W) window per image, offsets uniform in {0, ..., 2*pad}. (B, H, W, C) -> same.
    """
    batch = tf.shape(images)[0]
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")  # (B, H+2p, W+2p, C)
    offsets = tf.random.stateless_uniform((batch, 2), seed=seed + 5, minval=0, maxval=2 * pad + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None, :]  # (B, H)
    cols = offsets[:, 1:] + tf.range(width)[None, :]  # (B, W)
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)  # (B, H, W+2p, C)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)  # (B, H, W, C)


def crop_resize(images: tf.Tensor, y1, x1, y2, x2, out_size) -> tf.Tensor:
    """Resample crops [y1, y2] x [x1, x2] (normalised edges, (B,) each; x1 > x2 mirrors) to out_size.

    Matches a bilinear resize of the cropped pixels with half-pixel centres (torchvision's
    Resize): a crop spanning [a, b] of an n-pixel axis resampled to m pixels has its first and
    last output centres at a*n + (b-a)*n/(2m) - 0.5 and b*n - (b-a)*n/(2m) - 0.5 (pixel units).
    Positions that fall in the outer half pixel must clamp to the edge, which crop_and_resize
    does not do, so the images get a 1-pixel replicated border first. images: (B, H, W, C).
    """
    hw = tf.cast(tf.shape(images)[1:3], tf.float32)
    out_hw = tf.cast(out_size, tf.float32)
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")  # edge copies

    def ends(a, b, n, m):
        half = (b - a) * n / (2.0 * m)
        # +1 for the border; the padded axis has n + 2 pixels, so divide by n + 1
        return (a * n + half + 0.5) / (n + 1.0), (b * n - half + 0.5) / (n + 1.0)

    ya, yb = ends(y1, y2, hw[0], out_hw[0])
    xa, xb = ends(x1, x2, hw[1], out_hw[1])
    boxes = tf.stack([ya, xa, yb, xb], axis=-1)
    return tf.image.crop_and_resize(padded, boxes, tf.range(tf.shape(images)[0]), out_size)


def random_resized_crop(image: tf.Tensor, size: tuple[int, int], seed: tf.Tensor,
                        scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tf.Tensor:
    """One image (H, W, C) -> (size, C) float32: torchvision's RandomResizedCrop sampling.

    Area fraction uniform in `scale`, aspect ratio log-uniform in `ratio`; 10 tries, then the
    centre crop clamped to the ratio range (torchvision's fallback).
    """
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    area = hw[0] * hw[1]
    tries = 10
    target = _uniform(seed, (tries,), scale[0], scale[1], 11) * area
    log_r = _uniform(seed, (tries,), math.log(ratio[0]), math.log(ratio[1]), 12)
    r = tf.exp(log_r)
    w = tf.round(tf.sqrt(target * r))
    h = tf.round(tf.sqrt(target / r))
    ok = (w > 0) & (h > 0) & (w <= hw[1]) & (h <= hw[0])
    first = tf.argmax(tf.cast(ok, tf.int32))
    any_ok = tf.reduce_any(ok)
    in_ratio = hw[1] / hw[0]
    fw = tf.where(in_ratio < ratio[0], hw[1], tf.where(in_ratio > ratio[1], tf.round(hw[0] * ratio[1]), hw[1]))
    fh = tf.where(in_ratio < ratio[0], tf.round(hw[1] / ratio[0]), hw[0])
    ch = tf.where(any_ok, h[first], fh)
    cw = tf.where(any_ok, w[first], fw)
    top = tf.where(any_ok, tf.floor(_uniform(seed, (), 0.0, 1.0, 13) * (hw[0] - ch + 1)), tf.floor((hw[0] - ch) / 2))
    left = tf.where(any_ok, tf.floor(_uniform(seed, (), 0.0, 1.0, 14) * (hw[1] - cw + 1)), tf.floor((hw[1] - cw) / 2))
    edges = [tf.reshape(v, (1,)) for v in (top / hw[0], left / hw[1], (top + ch) / hw[0], (left + cw) / hw[1])]
    return crop_resize(tf.cast(image, tf.float32)[None], *edges, size)[0]


def color_jitter(images: tf.Tensor, seed: tf.Tensor, brightness=0.4, contrast=0.4, saturation=0.4) -> tf.Tensor:
    """torchvision ColorJitter(b, c, s) on a batch in [0, 255] (fixed order: b, c, s)."""
    batch = tf.shape(images)[0]
    b = _uniform(seed, (batch, 1, 1, 1), 1 - brightness, 1 + brightness, 21)
    c = _uniform(seed, (batch, 1, 1, 1), 1 - contrast, 1 + contrast, 22)
    s = _uniform(seed, (batch, 1, 1, 1), 1 - saturation, 1 + saturation, 23)
    x = tf.clip_by_value(images * b, 0.0, 255.0)
    grey = tf.image.rgb_to_grayscale(x)
    mean = tf.reduce_mean(grey, axis=[1, 2, 3], keepdims=True)
    x = tf.clip_by_value(c * x + (1 - c) * mean, 0.0, 255.0)
    grey = tf.image.rgb_to_grayscale(x)
    return tf.clip_by_value(s * x + (1 - s) * grey, 0.0, 255.0)


def augment_batch(name: str, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Apply the batch stage of augmentation `name` (see AUGMENTATIONS)."""
    if name == "none":
        return images
    if name == "flip":
        return random_flip(images, seed)
    if name == "cifar":
        return cifar_augment(images, seed)
    if name == "translate":  # flip + up to 2-pixel reflected shifts (the fast CIFAR-10 recipes)
        return random_flip(random_translate(images, seed), seed)
    if name == "imagenet":  # the crop ran per image already; flip + jitter here
        return color_jitter(random_flip(images, seed), seed)
    raise ValueError(f"unknown augmentation {name!r}; use one of {', '.join(AUGMENTATIONS)}")
