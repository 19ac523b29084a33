"""Export an image generator as a SavedModel that plain TensorFlow (no keras, no kcv) can serve.

Signatures (see DESIGN.md section 6):
    serving_default   noise float32 [None, latent_dim]            -> images uint8 [None, H, W, C]
    sample            seed int64 [None]                          -> images uint8 [None, H, W, C],
                                                                    noise float32 [None, latent_dim]
`sample` draws one sample per seed: noise row i ~ N(0, 1) is
tf.random.stateless_normal([latent_dim], seed=[seed[i], 0]) inside the graph, so a row depends on
its own seed only (equal seeds give equal samples, whatever the batch around them), the seed
batch is a real batch dimension (row format, TF Serving's --enable_batching), and feeding its
`noise` to serving_default gives the same images again. An empty batch (of seeds or of noise)
answers empty outputs of the shapes above. The generator's tanh output in [-1, 1] maps to uint8
as round(clip((x + 1) * 127.5, 0, 255)). H, W, C are the generator's (64, 64, 3 for the book's DCGAN).
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

    out_shape = [int(d) for d in generator.output_shape[1:]]

    def run(noise: tf.Tensor) -> tf.Tensor:
        out = generator(tf.reshape(noise, [-1] + noise_shape), training=False)
        return to_uint8(out) if output == "images" else tf.cast(out, tf.float32)

    def images(noise: tf.Tensor) -> tf.Tensor:
        # An empty batch answers empty outputs (TF's conv kernels mishandle a batch of 0).
        dtype = tf.uint8 if output == "images" else tf.float32
        return tf.cond(tf.shape(noise)[0] > 0, lambda: run(noise), lambda: tf.zeros([0] + out_shape, dtype))

    @tf.function(input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="noise")])
    def serve(noise: tf.Tensor) -> dict[str, tf.Tensor]:
        return {key: images(noise)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
    def sample(seed: tf.Tensor) -> dict[str, tf.Tensor]:
        def row(s: tf.Tensor) -> tf.Tensor:  # (,) int64 -> (latent_dim,) float32
            return tf.random.stateless_normal([latent_dim], seed=tf.stack([s, tf.constant(0, tf.int64)]))

        noise = tf.map_fn(row, seed, fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))
        return {key: images(noise), "noise": noise}

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", serve)
    archive.add_endpoint("sample", sample)
    return write_archive(archive, path)
