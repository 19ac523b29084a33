"""kcv.models lenet_bn: the book's BN-LeNet, scratch BN == Keras BN, round trips, gradients."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.layers import BatchNorm
from kcv.models import get_model, list_models
from kcv.models.lenet_bn import lenet_bn


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_book_shapes_on_28x28x1():
    model = lenet_bn()
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    # No padding: 28 -5+1-> 24 -pool-> 12 -5+1-> 8 -pool-> 4; 4*4*16 = 256 features.
    assert shapes["conv1"] == (24, 24, 6) and shapes["conv1_pool"] == (12, 12, 6)
    assert shapes["conv2"] == (8, 8, 16) and shapes["conv2_pool"] == (4, 4, 16)
    assert shapes["flatten"] == (256,) and shapes["dense1"] == (120,) and shapes["dense2"] == (84,)
    assert shapes["logits"] == (10,)
    assert model.get_layer("conv1_sigmoid").activation is keras.activations.sigmoid
    assert isinstance(model.get_layer("conv1_pool"), keras.layers.AveragePooling2D)


def test_pinned_parameter_counts():
    # conv1 5*5*1*6 = 150, BN 4*6 = 24; conv2 5*5*6*16 = 2,400, BN 64;
    # dense1 256*120 = 30,720, BN 480; dense2 120*84 = 10,080, BN 336; logits 84*10+10 = 850.
    # Total 45,104; BN moving statistics (24+64+480+336)/2 = 452 are non-trainable.
    # (The book's PyTorch model also has biases on conv1/conv2/dense1/dense2: 44,878 parameters.)
    for kind in ("scratch", "keras"):
        model = lenet_bn(batch_norm=kind)
        assert model.count_params() == 45_104
        assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 45_104 - 452


def test_batch_norm_kinds_and_scratch_equals_keras_after_training_steps():
    keras.utils.set_random_seed(0)
    scratch, builtin = lenet_bn(batch_norm="scratch"), lenet_bn(batch_norm="keras")
    assert isinstance(scratch.get_layer("conv1_bn"), BatchNorm)
    bn = builtin.get_layer("dense2_bn")
    assert isinstance(bn, keras.layers.BatchNormalization)
    assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)
    builtin.set_weights(scratch.get_weights())  # same weight order: gamma, beta, mean, var
    x, y = _x((16, 28, 28, 1)), np.arange(16) % 10
    for model in (scratch, builtin):
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(scratch.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The 4 steps moved the statistics: conv1 outputs have variance ~0.3, not the initial 1.
    moving = scratch.get_layer("conv1_bn").moving_variance.numpy()
    assert np.abs(moving - 1.0).min() > 0.05
    np.testing.assert_allclose(scratch(x, training=False), builtin(x, training=False), atol=1e-5)


@pytest.mark.parametrize("kind", ["scratch", "keras"])
def test_training_step_every_weight_gets_a_finite_nonzero_gradient(kind):
    model = lenet_bn(batch_norm=kind)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(np.arange(4), model(_x((4, 28, 28, 1)), training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == 4 + 4 * 2 + 2  # 4 kernels, 4 BN x (gamma, beta), logits kernel + bias
    for w, g in zip(model.trainable_weights, grads):
        assert np.all(np.isfinite(g.numpy())) and np.abs(g.numpy()).max() > 0, w.path


def test_config_and_keras_file_round_trip(tmp_path):
    model = lenet_bn(num_classes=3, input_shape=(16, 16, 3))
    x = _x((4, 16, 16, 3))
    model(x, training=True)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x, training=False), model(x, training=False), atol=1e-6)
    path = str(tmp_path / "lenet_bn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("dense1_bn"), BatchNorm)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_registry_and_bad_arguments():
    assert "lenet_bn" in list_models()
    model = get_model("lenet_bn", num_classes=5, batch_norm="keras")
    assert model.name == "lenet_bn_keras" and model.output.shape == (None, 5)
    with pytest.raises(ValueError, match="batch_norm must be one of"):
        lenet_bn(batch_norm="torch")
    with pytest.raises(ValueError, match="too small"):
        lenet_bn(input_shape=(15, 28, 1))  # 15 -> 11 -> 5 -> 1 -> 0
    assert lenet_bn(input_shape=(16, 16, 1)).get_layer("conv2_pool").output.shape[1:3] == (1, 1)


def test_weight_decay_penalises_every_kernel():
    model = lenet_bn(weight_decay=1e-3)
    assert len(model.losses) == 5  # conv1, conv2, dense1, dense2, logits kernels
    assert lenet_bn().losses == []
