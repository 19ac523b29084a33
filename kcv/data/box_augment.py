"""Box-aware training augmentation for detectors on keras-cv's layers, replayable batch by batch.

`BoxAugmenter(image_size, seed)` chains keras-cv's `RandomFlip` (horizontal), `JitteredResize`
(scale the image by a random factor, take a random crop of the model's size, boxes moved and
clipped with it; boxes pushed out of the crop get class -1) and `RandomColorJitter` (brightness,
contrast, saturation, hue) over keras-cv's bounding-box dicts in "rel_xyxy":

    {"images": (B, H, W, 3) float32 [0, 255],
     "bounding_boxes": {"boxes": (B, G, 4) float32, "classes": (B, G) float32}}   # padding -1

Why not the layers as they come: each draws from its own `tf.random.Generator` plus stateful
`tf.random.uniform` factor samplers, so two processes with the same layer seeds augment
differently and a resumed run could not replay its batches. Here every random draw of every
layer goes through ONE generator whose state is reset from a per-batch seed before the batch is
augmented: the same (seed, batch) gives the same boxes and pixels in any process, in any order,
and `dataset.skip(n)` on a resumed run replays exactly. The map that applies it must be
sequential (the generator is shared state), which costs little next to a training step.

keras-cv is imported when a BoxAugmenter is built, not with kcv.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

BOX_FORMAT = "rel_xyxy"


def _generator_uniform(generator: tf.random.Generator, lower: float, upper: float):
    """A keras-cv FactorSampler drawing U(lower, upper) from `generator` (not from tf.random.uniform)."""
    from keras_cv.core import FactorSampler

    class GeneratorUniform(FactorSampler):
        def __call__(self, shape=(), dtype="float32"):
            return generator.uniform(shape, minval=lower, maxval=upper, dtype=dtype)

        def get_config(self) -> dict:
            return {"lower": lower, "upper": upper}

    return GeneratorUniform()


class BoxAugmenter:
    """Flip, jittered resize and colour jitter that move boxes with the image; see the module docstring.

    Args:
        image_size: (H, W) of the output images (the model's input size).
        seed: the augmentation seed (the run's seed); per-batch seeds come with each call.
        scale: range of the jittered-resize scale factor (1 = the image just fits the output).
        brightness, contrast, hue: keras-cv factors (0 = off); saturation: keras-cv's
          (lower, upper) in [0, 1], 0.5 = unchanged.
    """

    def __init__(self, image_size: tuple[int, int], seed: int = 0, *, scale: tuple[float, float] = (0.75, 1.33),
                 brightness: float = 0.15, contrast: float = 0.2, saturation: tuple[float, float] = (0.4, 0.6),
                 hue: float = 0.03) -> None:
        import keras
        import keras_cv
        from keras_cv.core import UniformFactorSampler

        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.generator = tf.random.Generator.from_seed(int(seed), alg="philox")
        self.layers = [
            keras_cv.layers.RandomFlip(mode="horizontal", bounding_box_format=BOX_FORMAT),
            keras_cv.layers.JitteredResize(target_size=self.image_size, scale_factor=tuple(scale),
                                           bounding_box_format=BOX_FORMAT),
            keras_cv.layers.RandomColorJitter(value_range=(0, 255), brightness_factor=brightness,
                                              contrast_factor=contrast, saturation_factor=tuple(saturation),
                                              hue_factor=hue),
        ]
        # Route every draw through the one generator: each layer's own generator and its
        # tf.random.uniform-based factor samplers (same ranges, other source).
        seen: list[Any] = []
        stack = list(self.layers)
        while stack:
            layer = stack.pop()
            if any(layer is s for s in seen):
                continue
            seen.append(layer)
            layer._random_generator = self.generator
            for attr in ("factor", "scale_factor"):
                sampler = getattr(layer, attr, None)
                if isinstance(sampler, UniformFactorSampler):
                    setattr(layer, attr, _generator_uniform(self.generator, sampler.lower, sampler.upper))
            stack += [v for v in vars(layer).values() if isinstance(v, keras.layers.Layer)]

    def __call__(self, batch: dict, seed: tf.Tensor) -> dict:
        """Augment one batch dict (module docstring) with the per-batch `seed` (2,) int64.

        Returns the same structure; images float32 at `image_size`, boxes re-padded to the
        input's G rows (padding -1), classes float32.
        """
        seed = tf.cast(seed, tf.int64)
        # Philox state [counter_lo, counter_hi, key]: a fresh stream per batch seed.
        self.generator.reset(tf.stack([tf.constant(0, tf.int64), seed[1], seed[0]]))
        boxes_in = batch["bounding_boxes"]
        rows = tf.shape(boxes_in["classes"])[1]
        out = {"images": batch["images"], "bounding_boxes": boxes_in}
        for layer in self.layers:
            out = layer(out)
        return {"images": tf.cast(out["images"], tf.float32),
                "bounding_boxes": repad(out["bounding_boxes"], rows)}


def repad(bounding_boxes: dict, rows) -> dict:
    """keras-cv boxes (dense or ragged, any G') -> dense (B, rows, 4) boxes, (B, rows) classes.

    Valid boxes move to the front of each image; padding is -1 in both, as keras-cv pads.
    """
    boxes, classes = bounding_boxes["boxes"], bounding_boxes["classes"]
    if isinstance(boxes, tf.RaggedTensor):
        boxes = boxes.to_tensor(default_value=-1.0)
    if isinstance(classes, tf.RaggedTensor):
        classes = classes.to_tensor(default_value=-1.0)
    boxes = tf.cast(boxes, tf.float32)
    classes = tf.cast(classes, tf.float32)
    valid = classes >= 0  # (B, G')
    # Stable partition: valid rows first, in their order.
    order = tf.argsort(tf.cast(tf.logical_not(valid), tf.int32), axis=1, stable=True)
    boxes = tf.gather(boxes, order, batch_dims=1)
    classes = tf.gather(classes, order, batch_dims=1)
    valid = tf.gather(valid, order, batch_dims=1)
    boxes = tf.where(valid[..., None], boxes, -1.0)
    classes = tf.where(valid, classes, -1.0)
    have = tf.shape(classes)[1]
    pad = tf.maximum(rows - have, 0)
    boxes = tf.pad(boxes, [[0, 0], [0, pad], [0, 0]], constant_values=-1.0)[:, :rows]
    classes = tf.pad(classes, [[0, 0], [0, pad]], constant_values=-1.0)[:, :rows]
    return {"boxes": boxes, "classes": classes}
