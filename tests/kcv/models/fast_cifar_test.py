"""kcv.models.fast_cifar: shapes and parameter count by hand, the fixed logit temperature."""
import keras
import numpy as np
import pytest

from kcv.models import get_model


def test_shapes_and_parameters_by_hand():
    model = get_model("fast_cifar", num_classes=10, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 10)
    # spatial 32 -> 31 (2x2 valid stem) -> 15 -> 7 -> 3 (the pools)
    assert model.get_layer("stem_conv").output.shape[1:3] == (31, 31)
    assert [model.get_layer(f"block{i}_pool").output.shape[1] for i in (1, 2, 3)] == [15, 7, 3]
    # stem 2*2*3*24 + 24; convs 9*cin*cout (no bias); 4 BN weights per channel; Dense 256*10 (no bias)
    # at the default (airbench's) widths 64/256/256
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 + 256 * 256 + 256 * 256)
    bn = 4 * 2 * (64 + 256 + 256)
    assert model.count_params() == 2 * 2 * 3 * 24 + 24 + convs + bn + 256 * 10 == 1_975_096
    narrow = get_model("fast_cifar", widths=(64, 128, 256))
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256)
    assert narrow.count_params() == 2 * 2 * 3 * 24 + 24 + convs + 4 * 2 * (64 + 128 + 256) + 256 * 10 == 1_163_064


def test_logit_scale_is_a_temperature():
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    keras.utils.set_random_seed(0)
    one = get_model("fast_cifar", num_classes=3, input_shape=(16, 16, 3), widths=(4, 8), logit_scale=1.0)
    keras.utils.set_random_seed(0)
    half = get_model("fast_cifar", num_classes=3, input_shape=(16, 16, 3), widths=(4, 8), logit_scale=0.5)
    np.testing.assert_allclose(half(x, training=False), 0.5 * one(x, training=False), rtol=1e-5, atol=1e-6)


def test_bad_widths():
    with pytest.raises(ValueError, match="fast_cifar: widths and stem_width must be positive"):
        get_model("fast_cifar", widths=(64, 0))


def test_bn_scale_false_trains_only_the_offsets():
    model = get_model("fast_cifar", num_classes=3, input_shape=(16, 16, 3), widths=(4, 8), bn_scale=False)
    assert not [w for w in model.weights if w.name == "gamma"]
    assert len([w for w in model.trainable_weights if w.name == "beta"]) == 4
    full = get_model("fast_cifar", num_classes=3, input_shape=(16, 16, 3), widths=(4, 8))
    assert full.count_params() - model.count_params() == 4 + 4 + 8 + 8  # one gamma per BN channel


def test_whitening_stem_is_frozen_and_set_from_the_patch_covariance():
    cov = np.diag(np.linspace(1.0, 4.0, 12))
    model = get_model("fast_cifar", num_classes=3, input_shape=(16, 16, 3), widths=(4, 8), whiten=True,
                      patch_covariance=cov.tolist())
    stem = model.get_layer("stem_whitening")
    assert stem.output.shape[1:] == (15, 15, 24)
    assert "stem_whitening/kernel" not in [w.path for w in model.trainable_weights]
    # a diagonal covariance: filter i reads patch element i, scaled by 1 / sqrt(variance + eps)
    kernel = np.asarray(stem.kernel).reshape(12, 24)
    np.testing.assert_allclose(np.abs(kernel[:, :12]).max(axis=0), 1 / np.sqrt(np.linspace(1, 4, 12) + 5e-4),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="whiten=True needs patch_covariance"):
        get_model("fast_cifar", whiten=True)
    with pytest.raises(ValueError, match="a whitening stem has 2 x 2 x 2 x channels = 24 channels; got stem_width=16"):
        get_model("fast_cifar", whiten=True, patch_covariance=cov.tolist(), stem_width=16)


def test_identity_init_starts_each_block_conv_as_a_partial_identity():
    model = get_model("fast_cifar", num_classes=3, input_shape=(16, 16, 3), widths=(4, 8), identity_init=True)
    k = np.asarray(model.get_layer("block2_conv1").kernel)  # (3, 3, 4, 8): filters 0-3 copy channels 0-3
    np.testing.assert_array_equal(k[..., :4], np.eye(4)[None, None] * (np.arange(9) == 4).reshape(3, 3, 1, 1))
    assert np.abs(k[..., 4:]).max() > 0
