"""The tf.data input function for classification: TFRecord shards -> (images, labels) batches.

Images come out float32 in [0, 255], (batch, H, W, C); normalisation lives in the model (its first
layer holds the Transform statistics), so training, evaluation and the serving graph share it.
"""
from __future__ import annotations

import tensorflow as tf

from kcv.data import augment as aug
from kcv.data.preprocess import resize_for_model
from kcv.data.schema import decode_image, parse_example
from kcv.data.tfrecords import read_records


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
    flip + colour jitter batched), "flip", or "none".
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
