"""kcv.layers.ResidualBlock: the book's shapes and layer order, PyTorch sampling, round trips."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.layers import ResidualBlock, residual_apply, residual_parts

EPS = 1e-5


def torch_conv2d(x, kernel, stride, pad):
    """Reference conv with PyTorch's symmetric zero padding. x (N,H,W,C), kernel (kh,kw,C,F)."""
    kh, kw = kernel.shape[:2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho = (x.shape[1] + 2 * pad - kh) // stride + 1
    wo = (x.shape[2] + 2 * pad - kw) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, kernel.shape[3]), "float64")
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.einsum("nhwc,hwcf->nf", patch, kernel)
    return out


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_book_shapes():
    x = _x((4, 6, 6, 3))
    assert ResidualBlock(3)(x).shape == (4, 6, 6, 3)  # book: Residual(3) on (4,3,6,6)
    blk = ResidualBlock(6, use_1x1conv=True, strides=2)
    assert blk(x).shape == (4, 3, 3, 6)  # book: Residual(6, use_1x1conv=True, strides=2)
    assert blk.compute_output_shape((4, 6, 6, 3)) == (4, 3, 3, 6)
    assert blk.compute_output_shape((None, 7, 5, 3)) == (None, 4, 3, 6)  # floor((7+2-3)/2)+1 = 4


def test_layer_order_and_pytorch_sampling_in_inference_mode():
    # Fresh BN in inference: (v - 0) / sqrt(1 + eps) * 1 + 0, so the whole block is
    # relu(conv2(relu(conv1(x) / s)) / s + shortcut(x)) with s = sqrt(1 + eps).
    x = _x((2, 6, 6, 3))
    blk = ResidualBlock(4, use_1x1conv=True, strides=2)
    y = blk(x, training=False).numpy()
    s = np.sqrt(1 + EPS)
    h = np.maximum(torch_conv2d(x, blk.conv1.kernel.numpy(), 2, 1) / s, 0)
    h = torch_conv2d(h, blk.conv2.kernel.numpy(), 1, 1) / s
    sc = blk.shortcut_conv
    shortcut = torch_conv2d(x, sc.kernel.numpy(), 2, 0) + sc.bias.numpy()
    np.testing.assert_allclose(y, np.maximum(h + shortcut, 0), atol=1e-5)
    # TF "same" would pad (0, 1) here and sample other pixels: the explicit padding matters.
    same = tf.nn.conv2d(x, blk.conv1.kernel, 2, "SAME").numpy()
    assert np.abs(same - torch_conv2d(x, blk.conv1.kernel.numpy(), 2, 1)).max() > 1e-2


def test_identity_shortcut_needs_matching_shape():
    with pytest.raises(ValueError, match="use_1x1conv=True"):
        ResidualBlock(6)(_x((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="use_1x1conv=True"):
        ResidualBlock(3, strides=2)(_x((1, 4, 4, 3)))


def test_parts_names_and_no_bias_before_bn():
    parts = residual_parts(8, use_1x1conv=True, strides=2, prefix="stage2_block1_")
    assert [p.name for p in parts.values()] == [
        "stage2_block1_pad1", "stage2_block1_conv1", "stage2_block1_bn1", "stage2_block1_relu1",
        "stage2_block1_conv2", "stage2_block1_bn2", "stage2_block1_shortcut_conv",
        "stage2_block1_add", "stage2_block1_out",
    ]
    assert not parts["conv1"].use_bias and not parts["conv2"].use_bias
    assert parts["shortcut_conv"].use_bias  # no BN after the shortcut: the bias matters
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, residual_apply(parts, inputs))
    assert model.get_layer("stage2_block1_out").output.shape == (None, 4, 4, 8)


def test_training_step_every_weight_gets_a_finite_nonzero_gradient():
    blk = ResidualBlock(4, use_1x1conv=True, strides=2)
    x = _x((4, 6, 6, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(blk(x, training=True) * _x((4, 3, 3, 4), seed=1))
    grads = tape.gradient(loss, blk.trainable_weights)
    # conv1, bn1 (2), conv2, bn2 (2), shortcut kernel + bias
    assert len(grads) == 8
    for w, g in zip(blk.trainable_weights, grads):
        assert np.all(np.isfinite(g.numpy())), w.path
        assert np.abs(g.numpy()).max() > 0, w.path


def test_config_and_keras_file_round_trip(tmp_path):
    blk = ResidualBlock(4, use_1x1conv=True, strides=2, weight_decay=1e-3, name="res")
    clone = ResidualBlock.from_config(blk.get_config())
    assert clone.get_config() == blk.get_config()
    model = keras.Sequential([keras.Input((6, 6, 3)), blk])
    x = _x((4, 6, 6, 3))
    model(x, training=True)  # move the BN statistics
    path = str(tmp_path / "res.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
    assert isinstance(loaded.layers[0], ResidualBlock)


def test_weight_decay_is_pytorch_style_l2_on_kernels():
    blk = ResidualBlock(4, use_1x1conv=True, strides=2, weight_decay=0.1)
    blk(_x((1, 6, 6, 3)))
    kernels = [blk.conv1.kernel, blk.conv2.kernel, blk.shortcut_conv.kernel]
    # gradient weight_decay * w  <=>  penalty weight_decay / 2 * sum(w^2)
    expected = sum(0.05 * float(np.sum(k.numpy() ** 2)) for k in kernels)
    np.testing.assert_allclose(float(sum(blk.losses)), expected, rtol=1e-5)
    assert ResidualBlock(4).losses == []
