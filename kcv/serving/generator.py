"""Export an image generator as a SavedModel that plain TensorFlow (no keras, no kcv) can serve.

Signatures (see DESIGN.md section 6):
    serving_default   noise float32 [None, latent_dim]            -> images uint8 [None, H, W, C]
    sample            count int32 scalar, seed int64 scalar      -> images uint8 [count, H, W, C],
                                                                    noise float32 [count, latent_dim]
`sample` draws noise ~ N(0, 1) inside the graph with tf.random.stateless_normal(seed=[seed, 0]),
so equal (count, seed) give equal images, and feeding its `noise` to serving_default gives the
same images again. The generator's tanh output in [-1, 1] maps to uint8 as
round(clip((x + 1) * 127.5, 0, 255)). H, W, C are the generator's (64, 64, 3 for the book's DCGAN).
With output="points" (the toy GAN) both signatures return `samples`, float32 [None, d], unmapped.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from kcv.serving.archive import write_archive


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] floats -> uint8 0..255, rounded and clipped."""
    x = tf.cast(images, tf.float32)
    return tf.cast(tf.round(tf.clip_by_value((x + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def export_generator(generator: keras.Model, path: str, latent_dim: int = 100, output: str = "images") -> str:
    """Write `generator` (noise -> images in [-1, 1]) as a SavedModel at `path`, atomically.

    output="points" is for generators of vectors (the toy GAN): the key is then `samples`,
    float32 [None, d], as the generator returns them.

    The generator may take flat noise (batch, latent_dim) or any shape with latent_dim values
    per sample, e.g. DCGAN's (batch, 1, 1, latent_dim); it is called with training=False
    (BatchNorm uses its moving statistics). Returns `path`.
    """
    noise_shape = [int(d) for d in generator.input_shape[1:]]
    if math.prod(noise_shape) != latent_dim:
        raise ValueError(f"export_generator: latent_dim={latent_dim} does not match the generator's "
                         f"input shape {tuple(noise_shape)}")

    if output not in ("images", "points"):
        raise ValueError(f"export_generator: output must be 'images' or 'points', got {output!r}")
    key = "images" if output == "images" else "samples"

    def images(noise: tf.Tensor) -> tf.Tensor:
        out = generator(tf.reshape(noise, [-1] + noise_shape), training=False)
        return to_uint8(out) if output == "images" else tf.cast(out, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="noise")])
    def serve(noise: tf.Tensor) -> dict[str, tf.Tensor]:
        return {key: images(noise)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="count"),
                                  tf.TensorSpec([], tf.int64, name="seed")])
    def sample(count: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        check = tf.debugging.assert_non_negative(count, message="sample: count must be >= 0")
        with tf.control_dependencies([check]):
            noise = tf.random.stateless_normal(tf.stack([count, latent_dim]),
                                               seed=tf.stack([seed, tf.constant(0, tf.int64)]))
        return {key: images(noise), "noise": noise}

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", serve)
    archive.add_endpoint("sample", sample)
    return write_archive(archive, path)
