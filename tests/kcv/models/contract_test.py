"""The contract every registered model keeps, one table row per `kcv.models.list_models()` name.

In the spirit of keras-hub's shared `run_*_test` helpers: each model's own test file checks the
book's numbers; this file checks, for every registered builder with small arguments, that
  * its config round-trips: functional models through `keras.Model.from_config(get_config())`
    (same layer names, same outputs with the same weights); subclassed models with their own
    config (TinySSD, GAN, KcvRetinaNet) through `type(model).from_config` (same config, same outputs);
  * a `.keras` save/load gives the same outputs on a fixed input;
  * it trains: one gradient of a fixed random projection of its outputs, in training mode, is
    finite for every trainable weight and non-zero except where the architecture makes it zero
    (`zero_grad`); models with their own adversarial `train_step` (the GANs) run one step instead
    and every trainable weight must change and stay finite; frozen models (no trainable weights,
    e.g. the style-transfer VGG) must pass a finite, non-zero gradient to their input;
  * built under the `mixed_bfloat16` policy, every output is float32 (and finite); the policy is
    restored afterwards.
A new registered model fails `test_every_registered_model_has_an_entry` until it gets a row.
`kcv.models.classifier.image_classifier`, the wrapper the classification paths train, gets the
mixed-precision and save/load checks too.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import warnings
from typing import Any, Callable

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.models.functional import Functional

from kcv.models import get_model, list_models
from kcv.models.classifier import image_classifier
from kcv.models.dcgan import dcgan_optimizers
from kcv.models.gan import GAN, toy_optimizers


@dataclasses.dataclass(frozen=True)
class Case:
    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]  # one example; a GAN's is its flat noise
    batch: int = 2
    value_range: tuple[float, float] = (-1.0, 1.0)  # uniform inputs in this range
    train: str = "gradient"  # "gradient", "gan" (own train_step, real samples) or "frozen"
    real_shape: tuple[int, ...] | None = None  # "gan": one real sample
    optimizers: Callable[[], dict] | None = None  # "gan": compile kwargs
    zero_grad: str | None = None  # regex of weight paths whose gradient is (numerically) zero


SMALL_DCGAN = dict(latent_dim=8, image_size=16, base_filters=4, seed=0)

MODELS: dict[str, Case] = {
    "dcgan": Case(SMALL_DCGAN, (8,), train="gan", real_shape=(16, 16, 3), optimizers=dcgan_optimizers),
    "dcgan_discriminator": Case(dict(image_size=16, base_filters=4, seed=0), (16, 16, 3)),
    "dcgan_generator": Case(SMALL_DCGAN, (1, 1, 8)),
    "densenet": Case(dict(num_classes=3, input_shape=(32, 32, 1)), (32, 32, 1), batch=4),
    "fast_cifar": Case(dict(num_classes=3, input_shape=(16, 16, 3), widths=(4, 8, 8), stem_width=4), (16, 16, 3),
                       batch=4),
    "finetune": Case(dict(num_classes=3, backbone="mobilenet_v3_small", weights="none", keep_imagenet_top=False,
                          input_shape=(32, 32, 3), seed=0), (32, 32, 3), value_range=(0.0, 255.0)),
    "gan_gaussian": Case(dict(seed=0), (2,), batch=8, train="gan", real_shape=(2,), optimizers=toy_optimizers),
    "gan_toy_discriminator": Case(dict(seed=0), (2,)),
    "gan_toy_generator": Case(dict(seed=0), (2,)),
    "lenet_bn": Case(dict(num_classes=3, input_shape=(16, 16, 1)), (16, 16, 1), batch=4),
    "resnet18": Case(dict(num_classes=3, input_shape=(16, 16, 3), variant="cifar"), (16, 16, 3)),
    "retinanet": Case(dict(num_classes=2, input_shape=(64, 64, 3), head_width=8, head_convs=1, seed=0), (64, 64, 3),
                      value_range=(0.0, 255.0)),
    "simple_cnn": Case(dict(num_classes=3, input_shape=(16, 16, 3), width=4), (16, 16, 3)),
    # Its convs keep PyTorch's bias, and a training-mode batch norm follows each body conv, which
    # removes any per-channel constant: those biases get a zero gradient (up to rounding).
    "tiny_ssd": Case(dict(num_classes=2, input_shape=(64, 64, 3), seed=0), (64, 64, 3), value_range=(0.0, 255.0),
                     zero_grad=r"blk\d_down\d?_conv\d/bias$"),
    "vgg19_features": Case(dict(weights="none", seed=0, content_layers=("block2_conv1",),
                                style_layers=("block1_conv1", "block1_conv2")),
                           (16, 16, 3), batch=1, value_range=(0.0, 1.0), train="frozen"),
}


def _build(name: str) -> keras.Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # vgg19_features warns about random weights
        return get_model(name, **MODELS[name].kwargs)


def _inputs(case: Case, seed: int = 0) -> np.ndarray:
    low, high = case.value_range
    return np.random.default_rng(seed).uniform(low, high, (case.batch,) + case.input_shape).astype("float32")


def _outputs(model: keras.Model, x, training: bool = False) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(model(x, training=training))]


def _assert_same_outputs(a: keras.Model, b: keras.Model, x) -> None:
    for got, want in zip(_outputs(a, x), _outputs(b, x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@contextlib.contextmanager
def _policy(name: str):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.fixture(scope="module")
def built() -> dict[str, keras.Model]:
    return {}


def _model(built: dict, name: str) -> keras.Model:
    if name not in built:
        built[name] = _build(name)
    return built[name]


def test_every_registered_model_has_an_entry():
    registered = set(list_models())
    assert registered - set(MODELS) == set(), "add a row to MODELS for each new registered model"
    assert set(MODELS) - registered == set(), "MODELS lists a name that is no longer registered"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_config_round_trip(built, name):
    model, x = _model(built, name), _inputs(MODELS[name])
    if type(model) is Functional:  # a Functional subclass (KcvRetinaNet) has its own config
        clone = keras.Model.from_config(model.get_config())
        assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    else:  # a subclass with its own get_config / from_config
        clone = type(model).from_config(model.get_config())
        assert type(clone) is type(model) and clone.get_config() == model.get_config()
    assert [(w.path, tuple(w.shape)) for w in clone.weights] == [(w.path, tuple(w.shape)) for w in model.weights]
    clone.set_weights(model.get_weights())
    _assert_same_outputs(clone, model, x)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_keras_file_round_trip(built, name, tmp_path):
    model, x = _model(built, name), _inputs(MODELS[name], seed=1)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    _assert_same_outputs(loaded, model, x)


def _projection_loss(outputs, seed: int = 7):
    """A fixed random projection of every float output: each output element gets a gradient."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for t in keras.tree.flatten(outputs):
        t = tf.cast(t, tf.float32)
        total += tf.reduce_sum(t * tf.constant(rng.standard_normal(t.shape).astype("float32")))
    return total


@pytest.mark.parametrize("name", sorted(MODELS))
def test_trains(name):
    case = MODELS[name]
    model = _build(name)  # fresh: training moves batch-norm statistics
    x = _inputs(case, seed=2)
    if case.train == "gan":
        assert isinstance(model, GAN)
        model.compile(**case.optimizers())
        real = np.random.default_rng(3).uniform(-1, 1, (case.batch,) + case.real_shape).astype("float32")
        before = {w.path: w.numpy().copy() for w in model.trainable_weights}
        logs = model.train_step(tf.constant(real))
        assert np.isfinite(float(logs["d_loss"])) and np.isfinite(float(logs["g_loss"]))
        assert {w.path for w in model.trainable_weights} == {
            w.path for w in model.generator.trainable_weights + model.discriminator.trainable_weights}
        for w in model.trainable_weights:
            after = w.numpy()
            assert np.isfinite(after).all(), w.path
            assert not np.array_equal(after, before[w.path]), f"{w.path} did not change"
        return
    if case.train == "frozen":
        assert model.trainable_weights == []
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = _projection_loss(model(x, training=True))
        grad = tape.gradient(loss, x).numpy()
        assert np.isfinite(grad).all() and np.abs(grad).max() > 0
        return
    weights = model.trainable_weights
    assert weights, "a trainable model with no trainable weights"
    with tf.GradientTape() as tape:
        loss = _projection_loss(model(x, training=True))
    grads = tape.gradient(loss, weights)
    zero = re.compile(case.zero_grad) if case.zero_grad else None
    largest = {}  # path -> max |gradient|
    for w, g in zip(weights, grads, strict=True):
        assert g is not None, f"{w.path}: no gradient"
        g = keras.ops.convert_to_numpy(g)
        assert np.isfinite(g).all(), w.path
        largest[w.path] = float(np.abs(g).max())
    should_move = {p: v for p, v in largest.items() if zero is None or not zero.search(p)}
    assert all(v > 0 for v in should_move.values()), [p for p, v in should_move.items() if v == 0]
    if zero is not None:
        # Zero up to rounding: far below the smallest gradient a weight that should move gets.
        rest = {p: v for p, v in largest.items() if p not in should_move}
        assert rest, "zero_grad matches no weight"
        assert max(rest.values()) < 1e-2 * min(should_move.values()), rest


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float32_outputs_under_mixed_bfloat16(name):
    case = MODELS[name]
    with _policy("mixed_bfloat16"):
        model = _build(name)
        outputs = keras.tree.flatten(model(_inputs(case, seed=4), training=False))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    for t in outputs:
        assert keras.backend.standardize_dtype(t.dtype) == "float32"
        assert np.isfinite(keras.ops.convert_to_numpy(t)).all()


# ---- kcv.models.classifier.image_classifier -------------------------------------------------------
CLASSIFIER = dict(num_classes=3, input_shape=(16, 16, 3), mean=[120.0, 110.0, 100.0], std=[60.0, 50.0, 40.0],
                  width=4)


def test_image_classifier_float32_logits_under_mixed_precision():
    x = np.random.default_rng(5).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    with _policy("mixed_bfloat16"):
        model = image_classifier("simple_cnn", **CLASSIFIER)
        logits = model(x)
        assert model.get_layer("normalize").compute_dtype == "bfloat16"  # the body is mixed
    assert keras.backend.standardize_dtype(logits.dtype) == "float32" and logits.shape == (2, 3)
    assert np.isfinite(logits.numpy()).all()


def test_image_classifier_keras_file_round_trip(tmp_path):
    model = image_classifier("simple_cnn", **CLASSIFIER)
    x = np.random.default_rng(6).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    model(x, training=True)  # move the batch-norm statistics off their initial values
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [layer.name for layer in loaded.layers] == ["images", "normalize", "simple_cnn", "logits"]
    _assert_same_outputs(loaded, model, x)
    # The normalisation statistics travel with the file: (x - mean) / std before the backbone.
    norm = keras.Model(loaded.input, loaded.get_layer("normalize").output)
    np.testing.assert_allclose(norm(x).numpy(), (x - CLASSIFIER["mean"]) / np.array(CLASSIFIER["std"]), rtol=1e-4,
                               atol=1e-4)
