"""GAN as a `keras.Model` whose `train_step` updates D then G (D2L section "Generative Adversarial Networks").

    gan = kcv.models.GAN(generator, discriminator, latent_dim=2, seed=0)
    gan.compile(**kcv.models.gan.toy_optimizers())     # Adam lr_D 0.05, lr_G 0.005 (the book)
    gan.fit(dataset_of_real_batches, epochs=20)           # reports d_loss and g_loss

Losses (the book's `update_D` / `update_G`), with BCE on logits:
    d_loss = (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2       G's output is not differentiated here
    g_loss = BCE(D(G(z)), 1)                             the non-saturating generator loss
Both use the same z, and D is called again after its update, as in the book. The book also runs
G twice on that z (once per update); G's weights do not change in between, so when G is
deterministic in training mode (`forward_once_is_exact`, true of the book's nets) G runs once and
its FusedBatchNorm layers apply their running-average update twice (`repeated_updates`): the same
weights and state as the two forwards, one G forward (about a tenth of a DCGAN step) fewer.

`r1_penalty=gamma > 0` adds Mescheder et al.'s R1 gradient penalty to D's objective,
gamma/2 * mean over real x of ||dD(x)/dx||^2 (not in the book; 0 = the book's loss). It keeps D's
landscape smooth on the real data, which makes the equilibrium G = data locally attractive instead
of a point the two players circle or stall near ("Which Training Methods for GANs do actually
Converge?", ICML 2018). The reported `d_loss` stays the book's loss, without the penalty.

The book sums the loss over the batch (`reduction='sum'`); here it is the mean over the (global)
batch. Adam's step m / (sqrt(v) + eps) does not change when every gradient is multiplied by the
batch size, so the book's learning rates carry over unchanged (only eps is relatively
batch_size times larger, a negligible difference). The reported `d_loss`/`g_loss` are per-example
means over the epoch, exactly what the book prints (its Accumulator divides the summed loss by
the number of examples).

This module also holds the book's toy GAN (registered builders `gan_toy_generator`,
`gan_toy_discriminator` and `gan_gaussian`). The checks of what a trained generator produces
(`moments_report`, `generator_report`) are metrics: `kcv.metrics.generators`.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import keras
import tensorflow as tf
from keras import layers, ops

from kcv.layers.fused_batch_norm import FusedBatchNorm, repeated_updates
from kcv.models.registry import register

LossFn = Callable[[Any, Any], Any]


def _unreduced(loss_fn: LossFn | None) -> LossFn:
    """The loss as an unreduced (per-example) callable; a reducing Keras Loss is rebuilt unreduced.

    The GAN reduces itself (mean over the batch, then scaled for the number of replicas), so a
    Keras loss that already reduced and scaled would be scaled twice under MirroredStrategy.
    """
    if loss_fn is None:
        return keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)
    if isinstance(loss_fn, (str, dict)):
        loss_fn = keras.losses.get(loss_fn)
    if isinstance(loss_fn, keras.losses.Loss) and loss_fn.reduction not in (None, "none"):
        config = dict(loss_fn.get_config(), reduction=None)
        return type(loss_fn).from_config(config)
    return loss_fn


# Leaf layers whose training-mode call is a function of its input and weights alone: calling one
# twice on the same input returns the same tensor and changes no state.
_PURE_LEAVES = (
    layers.InputLayer, layers.Dense, layers.EinsumDense, layers.Conv1D, layers.Conv2D, layers.Conv3D,
    layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose, layers.DepthwiseConv2D,
    layers.SeparableConv2D, layers.Activation, layers.ReLU, layers.LeakyReLU, layers.ELU,
    layers.PReLU, layers.Softmax, layers.Reshape, layers.Flatten, layers.Permute, layers.Rescaling,
    layers.Identity, layers.ZeroPadding2D, layers.Cropping2D, layers.UpSampling2D, layers.Add,
    layers.Concatenate, layers.Multiply, layers.LayerNormalization,
)


def _builtin_activation(layer: keras.layers.Layer) -> bool:
    fn = getattr(layer, "activation", None)
    return fn is None or getattr(fn, "__module__", "").startswith("keras.")


def forward_once_is_exact(model: keras.Model) -> bool:
    """Whether one training-mode forward of `model` under `repeated_updates(model, 2)` stands for
    two forwards on the same input: every leaf layer is exactly one of the pure types
    (`_PURE_LEAVES`, not a subclass, with a Keras activation) or a FusedBatchNorm, and every
    container is a functional/Sequential model or a class that itself declares
    `pure_in_training = True` (its call only chains its sublayers; not inherited). Dropout, noise
    layers, Keras' BatchNormalization, a subclass (say a spectrally normalised Conv2D that updates
    a vector in every call) or an unknown layer make it False, and the GAN then runs G twice as
    the book does.
    """
    for layer in model._flatten_layers(include_self=True, recursive=True):
        children = list(layer._flatten_layers(include_self=False, recursive=False))
        if not children:
            if not (type(layer) is FusedBatchNorm or (type(layer) in _PURE_LEAVES and _builtin_activation(layer))):
                return False
        elif not (type(layer) in (keras.Sequential, keras.src.models.functional.Functional)
                  or type(layer).__dict__.get("pure_in_training", False)):
            return False
    return True


@keras.saving.register_keras_serializable(package="kcv")
class GAN(keras.Model):
    """Generator + discriminator trained adversarially on batches of real samples by `train_step`
    (through `fit()`, or a custom loop such as the pipelines' that calls `train_step` itself).

    Args:
        generator: built model mapping noise (batch, *noise_shape) to samples; noise_shape is its
            input shape, e.g. (2,) for the toy GAN or (1, 1, 100) for DCGAN.
        discriminator: built model mapping samples to logits (batch, ...) of any trailing shape.
        latent_dim: number of noise values per sample; must equal prod(noise_shape).
        seed: seed of the `keras.random.SeedGenerator` that draws the training noise.
        r1_penalty: gamma of the R1 penalty on D's gradient at real samples (0: none, the book).

    `call(noise)` returns `generator(noise)`; noise may be (batch, latent_dim) or
    (batch, *noise_shape).

    `generate_once` (set from `forward_once_is_exact(generator)`; not saved, recomputed on load):
    whether a train step runs G once for both updates (see the module doc). Set it before the
    first `fit`/`train_on_batch`: the step is traced then.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        seed: int | None = None,
        r1_penalty: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (isinstance(r1_penalty, (int, float)) and math.isfinite(r1_penalty) and r1_penalty >= 0):
            raise ValueError(f"GAN: r1_penalty must be a finite number >= 0, got {r1_penalty!r}")
        for role, model in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(model, keras.Model) or not model.built:
                raise ValueError(f"GAN: {role} must be a built keras.Model (give it an Input)")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.seed = seed
        self.r1_penalty = float(r1_penalty)
        self.noise_shape = tuple(int(d) for d in generator.input_shape[1:])
        if math.prod(self.noise_shape) != self.latent_dim:
            raise ValueError(
                f"GAN: latent_dim={latent_dim} does not match the generator's input shape "
                f"{self.noise_shape} (product {math.prod(self.noise_shape)})"
            )
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed_generator")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_optimizer: keras.optimizers.Optimizer | None = None
        self.g_optimizer: keras.optimizers.Optimizer | None = None
        self.loss_fn: LossFn | None = None
        self._gan_compile_config: dict[str, Any] = {}
        # G and D sharing a weight would break "G unchanged between the two forwards".
        shared = {id(v) for v in generator.weights} & {id(v) for v in discriminator.weights}
        self.generate_once = forward_once_is_exact(generator) and not shared
        self.built = True  # both sub-models are built, so the GAN has all its variables

    # ---- compile / metrics ----------------------------------------------------------------
    def compile(
        self,
        d_optimizer: Any,
        g_optimizer: Any,
        loss_fn: LossFn | None = None,
        **kwargs: Any,
    ) -> None:
        """Set the two optimizers (instances, names or configs) and the per-example loss.

        `loss_fn(y_true, logits)` defaults to BCE on logits. Extra keyword arguments
        (`run_eagerly`, `jit_compile`, `steps_per_execution`) go to `keras.Model.compile`.
        Both optimizers are built here, inside the model's distribution strategy scope, since
        MirroredStrategy cannot create their slots inside a replica step.
        """
        d_opt = keras.optimizers.get(d_optimizer)
        g_opt = keras.optimizers.get(g_optimizer)
        if d_opt is g_opt:
            raise ValueError("GAN.compile: d_optimizer and g_optimizer must be two optimizer objects")
        for key in ("optimizer", "loss", "metrics"):
            if key in kwargs:
                raise ValueError(f"GAN.compile takes d_optimizer/g_optimizer/loss_fn, not {key!r}")
        # keras.Model sees the generator's optimizer: its `iterations` counts train steps (the
        # step Keras callbacks such as TensorBoard read); it is never built on D's weights.
        super().compile(optimizer=g_opt, **kwargs)
        self.g_optimizer = self.optimizer  # a LossScaleOptimizer under mixed_float16
        if self.optimizer is not g_opt and not isinstance(d_opt, keras.optimizers.LossScaleOptimizer):
            d_opt = keras.optimizers.LossScaleOptimizer(d_opt, name="d_loss_scale_optimizer")
        self.d_optimizer = d_opt
        self.loss_fn = _unreduced(loss_fn)
        self._gan_compile_config = {
            "d_optimizer": keras.saving.serialize_keras_object(d_opt),
            "g_optimizer": keras.saving.serialize_keras_object(g_opt),
            "loss_fn": None if loss_fn is None else keras.saving.serialize_keras_object(self.loss_fn),
        }
        with self.distribute_strategy.scope():
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self) -> dict[str, Any]:
        return dict(self._gan_compile_config)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        if config:
            self.compile(**{k: keras.saving.deserialize_keras_object(v) for k, v in config.items()})

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        # Listed here so fit() resets them every epoch.
        return [self.d_loss_tracker, self.g_loss_tracker]

    # ---- forward / noise --------------------------------------------------------------------
    def call(self, noise: Any, training: bool = False) -> Any:
        """Generator output for noise of shape (batch, latent_dim) or (batch, *noise_shape)."""
        noise = ops.reshape(noise, (-1,) + self.noise_shape)
        return self.generator(noise, training=training)

    def sample_noise(self, batch_size: Any) -> tf.Tensor:
        """Standard-normal noise (batch_size, *noise_shape) from the model's SeedGenerator.

        Under tf.distribute each replica folds its replica id into the seed, so replicas draw
        different noise (else every replica would generate the same fake batch).
        """
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), 2**31 - 1), tf.int32)
        context = tf.distribute.get_replica_context()
        replica_id = 0 if context is None else context.replica_id_in_sync_group
        seed = tf.random.experimental.stateless_fold_in(seed, replica_id)
        shape = tf.concat([[batch_size], tf.constant(self.noise_shape, tf.int32)], axis=0)
        return tf.random.stateless_normal(shape, seed=seed, dtype=self.compute_dtype)

    def _mean_loss(self, labels_value: float, logits: Any) -> tf.Tensor:
        # Logits in float32 so the loss stays stable under mixed precision.
        logits = tf.cast(logits, tf.float32)
        labels = tf.fill(tf.shape(logits), labels_value)
        return tf.reduce_mean(tf.cast(self.loss_fn(labels, logits), tf.float32))

    def _r1(self, real: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """(D(real), R1 penalty gamma/2 * mean ||dD/dx||^2), recorded by the caller's tape.

        The sum of the logits over the batch has per-example gradients dD(x_i)/dx_i (each logit
        depends only on its own sample); float32, whatever the policy.
        """
        real = tf.convert_to_tensor(real)
        with tf.GradientTape() as inner:
            inner.watch(real)
            real_logits = self.discriminator(real, training=True)
            total = tf.reduce_sum(tf.cast(real_logits, tf.float32))
        grads = tf.cast(inner.gradient(total, real), tf.float32)
        per_example = tf.reduce_sum(tf.reshape(tf.square(grads), (tf.shape(grads)[0], -1)), axis=1)
        return real_logits, 0.5 * self.r1_penalty * tf.reduce_mean(per_example)

    # ---- training ----------------------------------------------------------------------------
    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        """One D update then one G update on a batch of real samples (x only; y is ignored)."""
        if self.d_optimizer is None:
            raise RuntimeError("GAN: call compile(d_optimizer=..., g_optimizer=...) before training")
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        batch = tf.shape(real)[0]
        # Each replica's mean loss is divided by the replica count: the optimizers sum the
        # replicas' gradients, which then equal the gradient of the global-batch mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        noise = self.sample_noise(batch)

        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        # G runs in training mode, as the book's net_G(Z). With generate_once its forward is
        # recorded for the G step and stands for the book's second net_G(Z) (see the module doc).
        with tf.GradientTape() as g_tape:
            if self.generate_once:
                with repeated_updates(self.generator, 2):
                    fake = self.generator(noise, training=True)
            else:
                with g_tape.stop_recording():
                    fake = self.generator(noise, training=True)

            # D step: G's output is a constant here.
            with g_tape.stop_recording():
                with tf.GradientTape() as tape:
                    if self.r1_penalty:
                        real_logits, penalty = self._r1(real)
                    else:
                        real_logits, penalty = self.discriminator(real, training=True), 0.0
                    fake_logits = self.discriminator(tf.stop_gradient(fake), training=True)
                    d_loss = (self._mean_loss(1.0, real_logits) + self._mean_loss(0.0, fake_logits)) / 2
                    scaled = self.d_optimizer.scale_loss((d_loss + penalty) / replicas)
                self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, d_vars), d_vars))

            # G step: same noise, D re-run with its new weights, non-saturating target 1.
            if not self.generate_once:
                fake = self.generator(noise, training=True)
            fake_logits = self.discriminator(fake, training=True)
            g_loss = self._mean_loss(1.0, fake_logits)
            scaled = self.g_optimizer.scale_loss(g_loss / replicas)
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(scaled, g_vars), g_vars))

        weight = tf.cast(batch, tf.float32)  # per-example means over the epoch, as the book prints
        self.d_loss_tracker.update_state(d_loss, sample_weight=weight)
        self.g_loss_tracker.update_state(g_loss, sample_weight=weight)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        """Both losses in inference mode, no updates (for `evaluate`)."""
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        batch = tf.shape(real)[0]
        fake = self.generator(self.sample_noise(batch), training=False)
        fake_logits = self.discriminator(fake, training=False)
        d_loss = (
            self._mean_loss(1.0, self.discriminator(real, training=False))
            + self._mean_loss(0.0, fake_logits)
        ) / 2
        g_loss = self._mean_loss(1.0, fake_logits)
        weight = tf.cast(batch, tf.float32)
        self.d_loss_tracker.update_state(d_loss, sample_weight=weight)
        self.g_loss_tracker.update_state(g_loss, sample_weight=weight)
        return {m.name: m.result() for m in self.metrics}

    # ---- serialisation ---------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
            "r1_penalty": self.r1_penalty,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "GAN":
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


# ---- the book's toy GAN -------------------------------------------------------------------------
def normal_init(seed: int | None, offset: int) -> keras.initializers.Initializer:
    """N(0, 0.02), the book's `nn.init.normal_(w, 0, 0.02)`; each variable gets its own seed."""
    return keras.initializers.RandomNormal(0.0, 0.02, seed=None if seed is None else seed + offset)


@register("gan_toy_generator")
def toy_generator(latent_dim: int = 2, data_dim: int = 2, seed: int | None = None,
                  name: str = "gan_toy_generator") -> keras.Model:
    """G = Linear(latent_dim -> data_dim): (batch, latent_dim) -> (batch, data_dim), float32
    samples even under a mixed-precision policy."""
    noise = keras.Input((latent_dim,), name="noise")
    x = layers.Dense(data_dim, kernel_initializer=normal_init(seed, 0),
                     bias_initializer=normal_init(seed, 1), dtype="float32", name="dense")(noise)
    return keras.Model(noise, x, name=name)


TOY_DISCRIMINATOR_UNITS = (5, 3)  # the book's hidden widths


@register("gan_toy_discriminator")
def toy_discriminator(data_dim: int = 2, seed: int | None = None, units: Sequence[int] = TOY_DISCRIMINATOR_UNITS,
                      name: str = "gan_toy_discriminator") -> keras.Model:
    """D = Linear(2->5)-Tanh-Linear(5->3)-Tanh-Linear(3->1): (batch, data_dim) -> logits (batch, 1),
    float32 even under a mixed-precision policy. `units` are the hidden widths (the book's (5, 3)),
    each followed by tanh; every weight is N(0, 0.02)."""
    hidden = tuple(int(u) for u in units)
    if not hidden or min(hidden) < 1:
        raise ValueError(f"toy_discriminator: units must be positive hidden widths, got {tuple(units)!r}")
    x = inputs = keras.Input((data_dim,), name="sample")
    for i, (width, activation) in enumerate([(u, "tanh") for u in hidden] + [(1, None)]):
        x = layers.Dense(width, activation=activation, kernel_initializer=normal_init(seed, 2 * i),
                         bias_initializer=normal_init(seed, 2 * i + 1),
                         dtype="float32" if activation is None else None, name=f"dense{i + 1}")(x)
    return keras.Model(inputs, x, name=name)


@register("gan_gaussian")
def gan_gaussian(latent_dim: int = 2, data_dim: int = 2, seed: int | None = None,
                 r1_penalty: float = 0.0, discriminator_units: Sequence[int] = TOY_DISCRIMINATOR_UNITS) -> GAN:
    """The book's toy GAN, uncompiled: compile with `toy_optimizers()` (inside a strategy scope).

    The defaults are the book's networks. `r1_penalty` > 0 trains D with the R1 gradient penalty
    (see GAN); `discriminator_units` are D's tanh hidden widths (the book's (5, 3)). The generator
    is always the book's linear one. The `gan_gaussian` experiment uses r1_penalty 3 and units
    (16, 8), with batch 32 and a cosine decay: with the book's recipe (`gan_gaussian_book`) D goes
    flat and the generator stalls short of the data on most seeds.
    """
    return GAN(
        toy_generator(latent_dim, data_dim, seed=seed),
        toy_discriminator(data_dim, seed=None if seed is None else seed + 100, units=discriminator_units),
        latent_dim=latent_dim,
        seed=None if seed is None else seed + 200,
        r1_penalty=r1_penalty,
        name="gan_gaussian",
    )


def toy_optimizers(lr_d: float = 0.05, lr_g: float = 0.005) -> dict[str, keras.optimizers.Optimizer]:
    """The book's toy-GAN optimizers as `compile` kwargs: Adam lr_D 0.05, lr_G 0.005 (eps as torch)."""
    return {
        "d_optimizer": keras.optimizers.Adam(lr_d, epsilon=1e-8, name="d_adam"),
        "g_optimizer": keras.optimizers.Adam(lr_g, epsilon=1e-8, name="g_adam"),
    }
