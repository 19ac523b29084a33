"""Style-transfer losses against hand-computed numbers."""
import numpy as np
import pytest
import tensorflow as tf

from kcv.losses import style


def test_content_loss_is_mse():
    y_hat = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(1, 1, 2, 2)
    y = np.array([0.0, 2.0, 5.0, 4.0], "float32").reshape(1, 1, 2, 2)
    # differences 1, 0, -2, 0 -> squares 1, 0, 4, 0 -> mean 5 / 4 = 1.25
    assert float(style.content_loss(y_hat, y)) == pytest.approx(1.25)


def test_content_loss_does_not_push_gradient_into_target():
    y_hat = tf.Variable(np.ones((1, 1, 2, 2), "float32"))
    y = tf.Variable(np.zeros((1, 1, 2, 2), "float32"))
    with tf.GradientTape() as tape:
        loss = style.content_loss(y_hat, y)
    g_hat, g_y = tape.gradient(loss, [y_hat, y])
    # d/dy_hat mean((y_hat - y)^2) = 2 * (1 - 0) / 4 = 0.5 everywhere; the target gets none
    np.testing.assert_allclose(g_hat.numpy(), np.full((1, 1, 2, 2), 0.5))
    assert g_y is None


def test_gram_channels_last():
    # h=1, w=2, c=2: position 1 holds channels (1, 2), position 2 holds (3, 4)
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], "float32")  # (1, 1, 2, 2)
    # X (c, n) = [[1, 3], [2, 4]]; X Xᵀ = [[1+9, 2+12], [2+12, 4+16]] = [[10, 14], [14, 20]]
    # divided by c·h·w = 2·1·2 = 4 -> [[2.5, 3.5], [3.5, 5.0]]
    np.testing.assert_allclose(style.gram(x).numpy(), [[2.5, 3.5], [3.5, 5.0]], rtol=1e-6)


def test_gram_shape_is_channels_by_channels():
    x = np.random.default_rng(0).normal(size=(1, 5, 7, 3)).astype("float32")
    g = style.gram(x).numpy()
    assert g.shape == (3, 3)
    # equals the book's formula computed by hand in numpy: X (c, h·w) · Xᵀ / (c·h·w)
    flat = x[0].reshape(35, 3).T
    np.testing.assert_allclose(g, flat @ flat.T / (3 * 35), rtol=1e-5)


def test_style_loss_is_mse_of_grams():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], "float32")
    # gram(x) = [[2.5, 3.5], [3.5, 5.0]] (above); against zeros:
    # (2.5² + 3.5² + 3.5² + 5²) / 4 = (6.25 + 12.25 + 12.25 + 25) / 4 = 55.75 / 4 = 13.9375
    assert float(style.style_loss(x, np.zeros((2, 2), "float32"))) == pytest.approx(13.9375)
    # against its own Gram matrix the loss vanishes
    assert float(style.style_loss(x, style.gram(x))) == pytest.approx(0.0)


def test_tv_loss():
    img = np.array([[1.0, 2.0], [4.0, 8.0]], "float32").reshape(1, 2, 2, 1)
    # |Δh| (down the rows): |4-1| = 3, |8-2| = 6 -> mean 4.5
    # |Δw| (along a row):   |2-1| = 1, |8-4| = 4 -> mean 2.5
    # 0.5 · (4.5 + 2.5) = 3.5
    assert float(style.tv_loss(img)) == pytest.approx(3.5)


def test_tv_loss_constant_image_is_zero_and_channels_average():
    assert float(style.tv_loss(np.full((1, 3, 4, 3), 0.7, "float32"))) == 0.0
    # two channels: the one above and a constant one; every mean halves -> 3.5 / 2 = 1.75
    img = np.concatenate(
        [np.array([[1.0, 2.0], [4.0, 8.0]]).reshape(1, 2, 2, 1), np.zeros((1, 2, 2, 1))], axis=-1
    ).astype("float32")
    assert float(style.tv_loss(img)) == pytest.approx(1.75)
