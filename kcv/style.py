"""Neural style transfer (d2l 14.12): optimise an image so its VGG-19 features match a content
image's and its Gram matrices match a style image's.

The optimised variable lives where the book's does: the image normalised torchvision-style,
(rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], so the book's lr 0.3 and TV weight 10 mean
the same step sizes and penalties. It is mapped back to RGB in [0, 1] (unclamped, as the book
feeds it) before the feature extractor, whose own preprocessing (Caffe, for Keras' VGG-19
weights) happens inside it. Clamping to [0, 1] happens only at the end, as the book's postprocess.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from kcv.losses.style import content_loss, gram, style_loss, tv_loss

# torchvision's ImageNet statistics, the book's Normalize(mean, std).
RGB_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
RGB_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class TransferResult(NamedTuple):
    """What `transfer` returns; unpacks as `image, losses = transfer(...)`."""

    image: np.ndarray  # (H, W, 3) float32 RGB in [0, 1]
    losses: dict[str, np.ndarray]  # "content", "style", "tv": (steps,) weighted losses per step


def load_image(image: Any, image_size: Sequence[int]) -> tf.Tensor:
    """(H, W, 3) uint8 (0-255) or float (0-1) RGB -> (1, h, w, 3) float32 RGB in [0, 1].

    Resized to `image_size` = (h, w) bilinearly with antialiasing, like torchvision's Resize on
    a PIL image in the book.
    """
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {tuple(image.shape)}")
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    else:
        image = tf.cast(image, tf.float32)
    h, w = _check_size(image_size)
    return tf.image.resize(image, (h, w), method="bilinear", antialias=True)[None]


def normalize(rgb: tf.Tensor) -> tf.Tensor:
    """RGB [0, 1] -> the book's normalised space, (rgb - mean) / std; any (..., 3)."""
    return (rgb - tf.constant(RGB_MEAN)) / tf.constant(RGB_STD)


def denormalize(x: tf.Tensor) -> tf.Tensor:
    """Inverse of `normalize`, unclamped; any (..., 3)."""
    return x * tf.constant(RGB_STD) + tf.constant(RGB_MEAN)


def postprocess(x: tf.Tensor) -> np.ndarray:
    """Normalised (1, h, w, 3) -> (h, w, 3) float32 RGB clamped to [0, 1], as the book."""
    return tf.clip_by_value(denormalize(x[0]), 0.0, 1.0).numpy()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 by x·255 truncated, as torchvision's ToPILImage in the book."""
    return (np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def transfer(
    content_image: Any,
    style_image: Any,
    *,
    image_size: Sequence[int] = (300, 450),
    steps: int = 500,
    lr: float = 0.3,
    lr_decay: float = 0.8,
    lr_period: int = 50,
    content_weight: float = 1.0,
    style_weight: float = 1e4,
    tv_weight: float = 10.0,
    weights: str = "imagenet",
    allow_download: bool = False,
    seed: int | None = None,
    extractor: keras.Model | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> TransferResult:
    """Synthesise an image with `content_image`'s content in `style_image`'s style (the book's).

    Images are (H, W, 3) RGB, uint8 or float in [0, 1]; both are resized to `image_size` (h, w).
    The only trainable variable is the synthesised image, initialised from the content image and
    optimised for `steps` steps by Adam (betas 0.9/0.999, epsilon 1e-8 as torch; Keras' default
    is 1e-7, and Keras adds it before bias correction, which only matters for |grad| near 1e-6)
    with learning rate `lr` · `lr_decay` ** (step // `lr_period`) (the book's StepLR).
    Loss = content_weight·Σ content MSE + style_weight·Σ style MSE of Grams + tv_weight·TV, each
    step inside one `tf.function`.

    extractor: a model mapping (1, h, w, 3) RGB in [0, 1] to `{"content": ..., "style": ...}`
    (dicts or lists of feature maps); default `kcv.models.vgg.vgg19_features(weights=weights,
    allow_download=allow_download, seed=seed)` with the book's layers, where `weights` is
    "imagenet", "none" (or "random": seeded random initialisation) or a local .h5 path, as in
    `kcv.models.pretrained`.
    callback(step, logs) runs after each step with logs "content", "style", "tv" (weighted, as
    the book plots them) and "lr" (the rate that step used).

    Returns TransferResult(image (h, w, 3) float32 in [0, 1], losses {name: (steps,) float32}).
    """
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if int(lr_period) != lr_period or lr_period < 1:
        raise ValueError(f"lr_period must be a positive integer, got {lr_period!r}")
    content_rgb = load_image(content_image, image_size)
    style_rgb = load_image(style_image, image_size)
    if extractor is None:
        from kcv.models.vgg import vgg19_features  # the models package loads lazily

        extractor = vgg19_features(weights=weights, allow_download=allow_download, seed=seed)

    def features(rgb: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        out = extractor(rgb, training=False)
        return _as_list(out["content"]), _as_list(out["style"])

    contents_y, _ = features(content_rgb)
    _, styles_y = features(style_rgb)
    styles_y_gram = [gram(y) for y in styles_y]

    def losses(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        contents_hat, styles_hat = features(denormalize(x))
        content = tf.add_n([content_loss(a, b) for a, b in zip(contents_hat, contents_y)])
        style = tf.add_n([style_loss(a, g) for a, g in zip(styles_hat, styles_y_gram)])
        return content_weight * content, style_weight * style, tv_weight * tv_loss(x)

    synthesized = keras.Variable(normalize(content_rgb), name="synthesized_image")
    schedule = keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=lr_period, decay_rate=lr_decay, staircase=True
    )
    optimizer = keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.999, epsilon=1e-8)

    @tf.function
    def train_step() -> tuple[tf.Tensor, ...]:
        step_lr = schedule(optimizer.iterations)
        with tf.GradientTape() as tape:
            content, style, tv = losses(synthesized.value)
            total = content + style + tv
        grads = tape.gradient(total, [synthesized])
        optimizer.apply_gradients(zip(grads, [synthesized]))
        return content, style, tv, step_lr

    history = {"content": [], "style": [], "tv": []}
    for step in range(int(steps)):
        content, style, tv, step_lr = (float(v) for v in train_step())
        history["content"].append(content)
        history["style"].append(style)
        history["tv"].append(tv)
        if callback is not None:
            callback(step, {"content": content, "style": style, "tv": tv, "lr": step_lr})
    image = postprocess(tf.convert_to_tensor(synthesized.value))
    return TransferResult(image, {k: np.asarray(v, np.float32) for k, v in history.items()})


def _as_list(features: Mapping[str, tf.Tensor] | Sequence[tf.Tensor] | tf.Tensor) -> list:
    """Feature maps as a list in a fixed order (dicts by sorted name)."""
    if isinstance(features, Mapping):
        return [features[k] for k in sorted(features)]
    if isinstance(features, (list, tuple)):
        return list(features)
    return [features]


def _check_size(image_size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return h, w
