"""The tf.data input functions: TFRecord shards of the one Example schema -> batches per task.

Classification (images, labels), detection (images, padded label rows), GAN points and images.

Images come out float32 in [0, 255], (batch, H, W, C); normalisation lives in the model (its first
layer holds the Transform statistics), so training, evaluation and the serving graph share it.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from kcv.data import augment as aug
from kcv.data.preprocess import resize_for_model
from kcv.data.schema import decode_image, parse_example
from kcv.data.tfrecords import read_records
from kcv.ops.boxes import rows_to_bounding_boxes


def classification_dataset(
    source: str | list[str],
    *,
    batch_size: int,
    training: bool,
    image_size: tuple[int, int],
    channels: int = 3,
    augment: str = "none",
    resize_mode: str = "stretch",
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    cache: bool = True,
    drop_remainder: bool | None = None,
    with_ids: bool = False,
) -> tf.data.Dataset:
    """Batches of (images float32 (B, H, W, C) in [0, 255], labels int32 (B,)) [, ids (B,)].

    training: shuffle (seeded, reshuffled each epoch), augment, drop the last partial batch
    (the book's drop_last=True). Evaluation keeps every example in file order.
    augment: "cifar" (crop+flip, batched), "imagenet" (random resized crop per image, then
    flip + colour jitter batched), "translate" (flip + 2-pixel reflected shifts, batched), "flip",
    or "none".
    """
    if augment not in aug.AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; use one of {', '.join(aug.AUGMENTATIONS)}")
    drop_remainder = training if drop_remainder is None else drop_remainder
    size = (int(image_size[0]), int(image_size[1]))
    per_image_crop = training and augment == "imagenet"

    def decode(serialized):
        ex = parse_example(serialized)
        image = decode_image(ex["image/encoded"], channels)
        if not per_image_crop:
            image = resize_for_model(image, size, resize_mode)
        return image, tf.cast(ex["label"], tf.int32), ex["id"]

    ds = read_records(source).map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache and not per_image_crop:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if per_image_crop:
        seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda item, s: (tf.cast(tf.clip_by_value(tf.round(aug.random_resized_crop(item[0], size, s)), 0, 255), tf.uint8),
                             item[1], item[2]),
            num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def to_float(images, labels, ids):
        return tf.cast(images, tf.float32), labels, ids

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment != "none":
        seeds = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda item, s: (aug.augment_batch(augment, item[0], s), item[1], item[2]),
            num_parallel_calls=tf.data.AUTOTUNE)
    if not with_ids:
        ds = ds.map(lambda images, labels, ids: (images, labels))
    return ds.prefetch(tf.data.AUTOTUNE)


def detection_dataset(
    source: str | list[str],
    *,
    batch_size: int,
    training: bool,
    image_size: tuple[int, int],
    max_objects: int,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    augment: str = "none",
) -> tf.data.Dataset:
    """Batches of (images float32 (B, H, W, 3) in [0, 255], bounding_boxes) for detectors.

    bounding_boxes is keras-cv's dict in "rel_xyxy" (normalised corners): {"boxes": (B, G, 4),
    "classes": (B, G) float32}, padded to G = max_objects rows of -1 (keras-cv's padding);
    `kcv.ops.boxes.bounding_boxes_to_rows` gives the book's (B, G, 5) label rows.
    augment: "none", or "boxes" (training only): kcv.data.box_augment's keras-cv flip, jittered
    resize and colour jitter, seeded per batch so a run repeats and a resumed run replays.
    """
    if augment not in ("none", "boxes"):
        raise ValueError(f"unknown detection augmentation {augment!r}; use none or boxes")
    size = (int(image_size[0]), int(image_size[1]))
    rows = max(1, int(max_objects))

    def parse(serialized):
        ex = parse_example(serialized)
        image = resize_for_model(decode_image(ex["image/encoded"], 3), size)
        classes = tf.cast(ex["objects/label"], tf.float32)[:, None]
        return image, tf.concat([classes, ex["objects/bbox"]], axis=1)  # (G, 5)

    ds = read_records(source).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.padded_batch(batch_size, padded_shapes=([size[0], size[1], 3], [rows, 5]),
                         padding_values=(tf.constant(0, tf.uint8), tf.constant(-1.0)), drop_remainder=training)
    ds = ds.map(lambda x, y: {"images": tf.cast(x, tf.float32), "bounding_boxes": rows_to_bounding_boxes(y)},
                num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment == "boxes":
        from kcv.data.box_augment import BoxAugmenter

        augmenter = BoxAugmenter(size, seed)
        seeds = tf.data.Dataset.random(seed=seed + 3, rerandomize_each_iteration=True).batch(2)
        # Sequential on purpose: the augmenter's one generator is reset per batch (box_augment.py).
        ds = tf.data.Dataset.zip((ds, seeds)).map(lambda batch, s: augmenter(batch, s))
    return ds.map(lambda d: (d["images"], d["bounding_boxes"])).prefetch(tf.data.AUTOTUNE)


def object_counts(source: str | list[str]) -> list[int]:
    """Objects per example of a detection split, in file order."""
    ds = read_records(source).map(lambda s: tf.shape(parse_example(s)["objects/label"])[0])
    return [int(n) for n in ds.as_numpy_iterator()]


def read_points(source: str | list[str]) -> np.ndarray:
    """The `features` vectors of a split, (n, d) float32 (the toy GAN's points)."""
    rows = [parse_example(r)["features"].numpy() for r in read_records(source)]
    if not rows:
        raise ValueError(f"{source} holds no examples")
    return np.stack(rows).astype(np.float32)


def points_dataset(source: str | list[str], *, batch_size: int, training: bool, seed: int = 0,
                   shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """Batches of points float32 (B, d); training shuffles (seeded, per epoch) and drops the remainder."""
    ds = tf.data.Dataset.from_tensor_slices(read_points(source)).cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def gan_image_dataset(source: str | list[str], *, batch_size: int, training: bool, image_size: tuple[int, int],
                      channels: int = 3, seed: int = 0, shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """Batches of images float32 (B, H, W, C) scaled to [-1, 1] (the book's Normalize(0.5, 0.5))."""
    ds = classification_dataset(source, batch_size=batch_size, training=False, image_size=image_size,
                                channels=channels, cache=True).unbatch()
    ds = ds.map(lambda image, _: image / 127.5 - 1.0)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
