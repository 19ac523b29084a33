"""kcv.layers.DenseBlock / TransitionBlock: the book's shapes and order, round trips, gradients."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.layers import DenseBlock, TransitionBlock, dense_block_apply, dense_block_parts

S = np.float32(np.sqrt(1 + 1e-5))  # a fresh BN in inference mode divides by this


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_book_shapes():
    x = _x((4, 8, 8, 3))
    y = DenseBlock(2, 10)(x)
    assert y.shape == (4, 8, 8, 23)  # book: DenseBlock(2, 10) on (4,3,8,8) -> (4,23,8,8); 3+2*10
    t = TransitionBlock(10)
    assert t(y).shape == (4, 4, 4, 10)  # book: transition_block(10) -> (4,10,4,4)
    assert DenseBlock(2, 10).compute_output_shape((None, 8, 8, 3)) == (None, 8, 8, 23)
    assert t.compute_output_shape((None, 9, 7, 23)) == (None, 4, 3, 10)  # floor(H / 2)


def test_dense_block_order_bn_relu_conv_then_concat_input_first():
    x = _x((2, 5, 5, 3))
    blk = DenseBlock(2, 4)
    y = blk(x, training=False).numpy()
    np.testing.assert_array_equal(y[..., :3], x)  # torch.cat((X, Y)): the input comes first
    k1 = blk.conv1_conv.kernel
    y1 = tf.nn.conv2d(np.maximum(x / S, 0), k1.numpy(), 1, "SAME").numpy()
    np.testing.assert_allclose(y[..., 3:7], y1, atol=1e-5)
    k2 = blk.conv2_conv.kernel.numpy()
    y2 = tf.nn.conv2d(np.maximum(y[..., :7] / S, 0), k2, 1, "SAME").numpy()
    np.testing.assert_allclose(y[..., 7:], y2, atol=1e-5)


def test_transition_order_bn_relu_conv1x1_avgpool():
    x = _x((1, 4, 4, 3))
    t = TransitionBlock(2)
    y = t(x, training=False).numpy()
    h = np.einsum("nhwc,cf->nhwf", np.maximum(x / S, 0), t.conv.kernel.numpy()[0, 0])
    ref = h.reshape(1, 2, 2, 2, 2, 2).mean(axis=(2, 4))  # 2x2 average, stride 2
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_parts_names():
    parts = dense_block_parts(2, 4, prefix="dense1_")
    assert [p.name for p in parts.values()] == [
        "dense1_conv1_bn", "dense1_conv1_relu", "dense1_conv1_conv", "dense1_concat1",
        "dense1_conv2_bn", "dense1_conv2_relu", "dense1_conv2_conv", "dense1_concat2",
    ]
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, dense_block_apply(parts, inputs))
    assert model.get_layer("dense1_concat2").output.shape == (None, 8, 8, 11)


def test_training_step_every_weight_gets_a_finite_nonzero_gradient():
    blk, t = DenseBlock(2, 4), TransitionBlock(3)
    x = _x((4, 6, 6, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(t(blk(x, training=True), training=True) * _x((4, 3, 3, 3), seed=1))
    weights = blk.trainable_weights + t.trainable_weights
    assert len(weights) == 2 * 3 + 3  # per conv block: gamma, beta, kernel; transition the same
    for w, g in zip(weights, tape.gradient(loss, weights)):
        assert np.all(np.isfinite(g.numpy())), w.path
        assert np.abs(g.numpy()).max() > 0, w.path


@pytest.mark.parametrize(
    "make", [lambda: DenseBlock(2, 4, name="d"), lambda: TransitionBlock(5, name="t")]
)
def test_config_and_keras_file_round_trip(tmp_path, make):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((6, 6, 3)), layer])
    x = _x((4, 6, 6, 3))
    model(x, training=True)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[0]) is type(layer)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_convs"):
        DenseBlock(0, 4)
    with pytest.raises(ValueError, match="filters"):
        TransitionBlock(0)
    with pytest.raises(ValueError, match="weight_decay"):
        DenseBlock(1, 4, weight_decay=-1.0)
