"""DCGAN generator and discriminator, the book's networks (D2L section "Deep Convolutional GANs").

Channels-last. For the default 64x64 RGB images:

    generator     (batch, 1, 1, 100) -> g_block1 512@4x4 (s1, valid) -> g_block2 256@8 -> g_block3 128@16
                  -> g_block4 64@32 -> g_out Conv2DTranspose 3@64 (s2) -> tanh          (batch, 64, 64, 3)
    discriminator (batch, 64, 64, 3) -> d_block1 64@32 -> d_block2 128@16 -> d_block3 256@8
                  -> d_block4 512@4 -> d_out Conv2D 1, k4 valid                      logits (batch, 1, 1, 1)

Every convolution has kernel 4 and no bias. A stride-2 block with padding "same" on an even input
is exactly torch's padding 1 (one row/column on each side: (n-1)*2 + 4 - 2n = 2 in total), for
Conv2D and Conv2DTranspose alike; tests/kcv/models/dcgan_test.py checks it against a direct
implementation of the torch formulas. All weights, BN gamma and beta included, are N(0, 0.02), and
BN is kcv's FusedBatchNorm: torch's BatchNorm2d (momentum 0.1 on the new value, eps 1e-5, the
unbiased batch variance in the running update), as the book's PyTorch code has it, on TensorFlow's
fused kernel (the training step takes ~1.17x fewer CPU-seconds on 2 cores than with Keras'
unfused ops; benchmarks/README.md). `image_size` may be any power of two >= 8 (fewer blocks) for fast tests.

Discriminator normalisation: the book's code normalises all four D blocks; the DCGAN paper (Radford
et al. 2016) uses batch normalization everywhere *except* the generator's output layer and the
discriminator's input layer. `discriminator_input_bn=True` (the builders' default, the book) keeps
d_block1's BatchNorm; False drops it, so d_block1 is Conv2D + LeakyReLU (still no bias, as in
PyTorch's DCGAN example): 128 fewer trainable parameters (gamma, beta of 64 channels) and 128
fewer moving statistics. The `dcgan_pokemon` experiment uses False, `dcgan_pokemon_book` True.

The generator's input is the book's (1, 1, latent_dim) noise "image"; `kcv.models.GAN` and
`kcv.serving.generator` accept flat (batch, latent_dim) noise and reshape it.
"""
from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers

from kcv.layers.fused_batch_norm import FusedBatchNorm
from kcv.models.gan import GAN, normal_init
from kcv.models.registry import register

# Adam for both networks (the book): betas (0.5, 0.999), torch's eps. The learning rate is the
# PyTorch/MXNet tabs' 0.005 (20 epochs), the book's main recipe with printed results to compare
# against (pt ends loss_D 0.023, loss_G 7.359). The TF tab's 0.0005 needs 40 epochs, and the
# book's N(0, 0.02) init of BN gamma starts every activation ~50x smaller than usual, which Adam
# at 0.0005 takes thousands of steps to undo. Measured on 1024 embedded sprites, batch 64,
# 96 steps: lr 0.005 gave samples with mean pairwise distance 0.069 and 0.25% near-duplicate
# pairs; lr 0.0005 gave flat grey images, 0.022 and 45% near-duplicates. Pass lr=0.0005 (with
# 40 epochs) for the TF tab's recipe. Adam ignores the loss scale, so sum vs mean does not matter.
DEFAULT_LR = 0.005


def _blocks(image_size: int) -> int:
    """Number of stride-2 stages: 64 -> 4 (32, 16, 8, 4 in D)."""
    n = int(round(math.log2(image_size))) if image_size > 0 else 0
    if image_size < 8 or 2**n != image_size:
        raise ValueError(f"DCGAN: image_size must be a power of two >= 8, got {image_size}")
    return n - 2


@keras.saving.register_keras_serializable(package="kcv")
class GBlock(layers.Layer):
    """The book's G_block: Conv2DTranspose(k4, no bias) + BatchNorm + ReLU.

    (batch, h, w, c) -> (batch, 2h, 2w, filters) with the defaults (stride 2, "same");
    (batch, 1, 1, c) -> (batch, 4, 4, filters) with strides=1, padding="valid".
    """

    pure_in_training = True  # call chains conv, BN, activation: see kcv.models.gan.forward_once_is_exact

    def __init__(self, filters: int, kernel_size: int = 4, strides: int = 2, padding: str = "same",
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides, self.padding, self.seed = (
            filters, kernel_size, strides, padding, seed)
        self.conv = layers.Conv2DTranspose(filters, kernel_size, strides, padding, use_bias=False,
                                           kernel_initializer=normal_init(seed, 0), name="conv")
        self.bn = FusedBatchNorm(momentum=0.1, epsilon=1e-5, gamma_initializer=normal_init(seed, 1),
                                 beta_initializer=normal_init(seed, 2), name="bn")
        self.act = layers.ReLU(name="relu")

    def build(self, input_shape: tuple) -> None:
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, x: Any, training: bool | None = None) -> Any:
        return self.act(self.bn(self.conv(x), training=training))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.conv.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kcv")
class DBlock(layers.Layer):
    """The book's D_block: Conv2D(k4, s2, p1, no bias) + BatchNorm + LeakyReLU(0.2).

    (batch, h, w, c) -> (batch, h/2, w/2, filters). Keras' LeakyReLU default slope is 0.3.
    `batch_norm=False` leaves the BatchNorm out (the DCGAN paper's input block): Conv2D + LeakyReLU,
    still without a bias (as PyTorch's DCGAN example).
    """

    pure_in_training = True  # call chains conv, BN, activation: see kcv.models.gan.forward_once_is_exact

    def __init__(self, filters: int, kernel_size: int = 4, strides: int = 2, padding: str = "same",
                 negative_slope: float = 0.2, seed: int | None = None, batch_norm: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides, self.padding = filters, kernel_size, strides, padding
        self.negative_slope, self.seed, self.batch_norm = negative_slope, seed, bool(batch_norm)
        self.conv = layers.Conv2D(filters, kernel_size, strides, padding, use_bias=False,
                                  kernel_initializer=normal_init(seed, 0), name="conv")
        self.bn = FusedBatchNorm(momentum=0.1, epsilon=1e-5, gamma_initializer=normal_init(seed, 1),
                                 beta_initializer=normal_init(seed, 2), name="bn") if batch_norm else None
        self.act = layers.LeakyReLU(negative_slope=negative_slope, name="leaky_relu")

    def build(self, input_shape: tuple) -> None:
        self.conv.build(input_shape)
        if self.bn is not None:
            self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, x: Any, training: bool | None = None) -> Any:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        return self.act(x)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.conv.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "negative_slope": self.negative_slope, "seed": self.seed, "batch_norm": self.batch_norm}


def _sub_seed(seed: int | None, i: int) -> int | None:
    return None if seed is None else seed + 10 * i


@register("dcgan_generator")
def dcgan_generator(latent_dim: int = 100, image_size: int = 64, channels: int = 3,
                    base_filters: int = 64, seed: int | None = None,
                    name: str = "dcgan_generator") -> keras.Model:
    """net_G: noise (batch, 1, 1, latent_dim) -> images in [-1, 1] (batch, size, size, channels)."""
    n = _blocks(image_size)
    noise = keras.Input((1, 1, latent_dim), name="noise")
    filters = base_filters * 2 ** (n - 1)  # 512 for 64x64
    x = GBlock(filters, strides=1, padding="valid", seed=_sub_seed(seed, 0), name="g_block1")(noise)
    for i in range(1, n):
        filters //= 2
        x = GBlock(filters, seed=_sub_seed(seed, i), name=f"g_block{i + 1}")(x)
    x = layers.Conv2DTranspose(channels, 4, 2, "same", use_bias=False,
                               kernel_initializer=normal_init(seed, 10 * n + 5), name="g_out_conv")(x)
    images = layers.Activation("tanh", dtype="float32", name="g_out_tanh")(x)
    return keras.Model(noise, images, name=name)


@register("dcgan_discriminator")
def dcgan_discriminator(image_size: int = 64, channels: int = 3, base_filters: int = 64,
                        seed: int | None = None, input_bn: bool = True,
                        name: str = "dcgan_discriminator") -> keras.Model:
    """net_D: images (batch, size, size, channels) in [-1, 1] -> logits (batch, 1, 1, 1).

    input_bn: BatchNorm in the first block too (the book's code); False: the DCGAN paper's D.
    """
    n = _blocks(image_size)
    x = images = keras.Input((image_size, image_size, channels), name="image")
    for i in range(n):
        x = DBlock(base_filters * 2**i, seed=_sub_seed(seed, i), batch_norm=input_bn or i > 0,
                   name=f"d_block{i + 1}")(x)
    logits = layers.Conv2D(1, 4, padding="valid", use_bias=False, dtype="float32",
                           kernel_initializer=normal_init(seed, 10 * n + 5), name="d_out_conv")(x)
    return keras.Model(images, logits, name=name)


@register("dcgan")
def build_dcgan(latent_dim: int = 100, image_size: int = 64, channels: int = 3, base_filters: int = 64,
                seed: int | None = None, discriminator_input_bn: bool = True) -> GAN:
    """The book's DCGAN as an uncompiled `GAN`; compile with `dcgan_optimizers()` in the strategy scope.

    discriminator_input_bn=False: no BatchNorm in D's first block, as the DCGAN paper (the
    `dcgan_pokemon` experiment); True: all four blocks normalised, as the book's code.
    """
    return GAN(
        dcgan_generator(latent_dim, image_size, channels, base_filters, seed=seed),
        dcgan_discriminator(image_size, channels, base_filters,
                            seed=None if seed is None else seed + 1000, input_bn=discriminator_input_bn),
        latent_dim=latent_dim,
        seed=None if seed is None else seed + 2000,
        name="dcgan",
    )


def dcgan_optimizers(lr: float = DEFAULT_LR) -> dict[str, keras.optimizers.Optimizer]:
    """`compile` kwargs: Adam(lr, beta_1=0.5, beta_2=0.999, epsilon=1e-8) for D and for G."""
    return {
        "d_optimizer": keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.999, epsilon=1e-8, name="d_adam"),
        "g_optimizer": keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.999, epsilon=1e-8, name="g_adam"),
    }
