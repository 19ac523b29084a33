"""kcv.layers.whitening: the frozen patch-whitening stem decorrelates the patches it was set from."""
import keras
import numpy as np
import pytest

from kcv.layers.whitening import PatchWhitening, whitening_kernel


def _patches(x, p):  # (N, H, W, C) -> (N * H' * W', p * p * C), (row, column, channel) order
    w = np.lib.stride_tricks.sliding_window_view(x, (p, p), axis=(1, 2))
    return w.transpose(0, 1, 2, 4, 5, 3).reshape(-1, p * p * x.shape[-1])


def _correlated_images(seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(64, 12, 12, 3))
    # neighbouring pixels and channels strongly correlated, as in photos
    smooth = base + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=2) + base[..., ::-1] * 0.5
    return smooth.astype(np.float32)


def test_outputs_are_white_on_the_patches_it_was_set_from():
    x = _correlated_images()
    flat = _patches(x.astype(np.float64), 2)
    cov = flat.T @ flat / len(flat)
    layer = PatchWhitening(2, cov, eps=1e-9)
    y = np.asarray(layer(x), np.float64).reshape(-1, 24)  # (N * 11 * 11, 24)
    assert layer.compute_output_shape((None, 12, 12, 3)) == (None, 11, 11, 24)
    white = y[:, :12].T @ y[:, :12] / len(y)
    np.testing.assert_allclose(white, np.eye(12), atol=1e-4)  # decorrelated, unit variance
    np.testing.assert_allclose(y[:, 12:], -y[:, :12], rtol=1e-6, atol=1e-6)  # the negated copies
    # the kernel's layout is the patches' (row, column, channel): the conv is patch @ filters
    filters = whitening_kernel(cov, 2, 3, eps=1e-9).reshape(12, 24)
    np.testing.assert_allclose(y, flat @ filters, rtol=1e-4, atol=1e-3)


def test_kernel_is_frozen_bias_trains_and_both_survive_saving(tmp_path):
    x = _correlated_images()
    flat = _patches(x.astype(np.float64), 2)
    inputs = keras.Input((12, 12, 3))
    model = keras.Model(inputs, PatchWhitening(2, flat.T @ flat / len(flat), name="w")(inputs))
    layer = model.get_layer("w")
    assert [v.name for v in layer.trainable_weights] == ["bias"]
    assert [v.name for v in layer.non_trainable_weights] == ["kernel"]
    layer.bias.assign(np.arange(24, dtype=np.float32))
    path = str(tmp_path / "w.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x[:2]), model(x[:2]), rtol=1e-6, atol=1e-5)


def test_bad_covariance_is_refused():
    with pytest.raises(ValueError, match=r"covariance must be \(12, 12\) for 2x2 patches of 3 channels"):
        whitening_kernel(np.eye(4), 2, 3)
    with pytest.raises(ValueError, match="non-finite"):
        whitening_kernel(np.full((12, 12), np.nan), 2, 3)
