"""kcv.layers.stem_layers: shapes and sampled positions equal to PyTorch's padded conv/pool."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.layers import logits_dense, stem_layers


def torch_conv2d(x, kernel, stride, pad):
    """Reference conv with PyTorch's symmetric zero padding. x (N,H,W,C), kernel (kh,kw,C,F)."""
    kh, kw = kernel.shape[:2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, kernel.shape[3]), "float64")
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.einsum("nhwc,hwcf->nf", patch, kernel)
    return out


def torch_max_pool(x, k, stride, pad):
    """PyTorch max-pool: pads with -inf."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
    ho, wo = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, i, j] = window.max(axis=(1, 2))
    return out


def _apply(layers, x, training=False):
    for layer in layers:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        x = layer(x, training=training) if is_bn else layer(x)
    return x


@pytest.mark.parametrize("size", [10, 11])
def test_d2l_stem_matches_pytorch_conv_k7_s2_p3_and_pool_k3_s2_p1(size):
    x = np.random.default_rng(0).normal(size=(2, size, size, 2)).astype("float32")
    layers = stem_layers("d2l", filters=3)
    assert [l.name for l in layers] == [
        "stem_pad", "stem_conv", "stem_bn", "stem_relu", "stem_pool_pad", "stem_pool"
    ]
    y = _apply(layers, x).numpy()
    kernel = layers[1].kernel.numpy()
    # Fresh BN in inference divides by sqrt(1 + 1e-5).
    ref = np.maximum(torch_conv2d(x, kernel, 2, 3) / np.sqrt(1 + 1e-5), 0)
    ref = torch_max_pool(ref, 3, 2, 1)
    # 10 -> floor((10+6-7)/2)+1 = 5 -> floor((5+2-3)/2)+1 = 3; 11 -> 6 -> 3
    assert y.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(y, ref, atol=1e-5)
    if size == 10:
        # TF "same" pads (2, 3) here: same shape, other pixels. Hence the explicit padding.
        same = tf.nn.conv2d(x, kernel, 2, "SAME").numpy()
        assert same.shape[1] == 5
        assert np.abs(same - torch_conv2d(x, kernel, 2, 3)).max() > 1e-2


def test_cifar_stem_is_same_padded_3x3_without_pool():
    layers = stem_layers("cifar")
    assert [l.name for l in layers] == ["stem_conv", "stem_bn", "stem_relu"]
    assert layers[0].padding == "same" and layers[0].kernel_size == (3, 3)
    x = np.random.default_rng(1).normal(size=(1, 5, 5, 3)).astype("float32")
    y = _apply(layers, x).numpy()
    ref = np.maximum(torch_conv2d(x, layers[0].kernel.numpy(), 1, 1) / np.sqrt(1 + 1e-5), 0)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_unknown_variant_raises():
    with pytest.raises(ValueError, match="unknown stem variant 'vgg'"):
        stem_layers("vgg")


def test_logits_dense_float32_under_mixed_precision():
    assert logits_dense(10).dtype_policy.name == "float32"
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = logits_dense(3)
        assert layer(np.ones((1, 2), "float16")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)
    with pytest.raises(ValueError, match="num_classes"):
        logits_dense(0)
