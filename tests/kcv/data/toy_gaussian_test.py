"""Toy GAN data: the book's X·A + b."""
import numpy as np
import pytest

from kcv.data import toy_gaussian


def test_constants_and_true_moments():
    np.testing.assert_allclose(toy_gaussian.A, [[1, 2], [-0.1, 0.5]], rtol=1e-7)
    np.testing.assert_array_equal(toy_gaussian.b, [1, 2])
    # AᵀA = [[1*1 + (-0.1)(-0.1), 1*2 + (-0.1)(0.5)], [.., 2*2 + 0.5*0.5]] = [[1.01, 1.95], [1.95, 4.25]]
    np.testing.assert_allclose(toy_gaussian.true_covariance(), [[1.01, 1.95], [1.95, 4.25]], atol=1e-6)
    np.testing.assert_array_equal(toy_gaussian.true_mean(), [1, 2])


def test_make_data_is_xa_plus_b_and_deterministic():
    data = toy_gaussian.make_data(1000, seed=3)
    assert data.shape == (1000, 2) and data.dtype == np.float32
    np.testing.assert_array_equal(data, toy_gaussian.make_data(1000, seed=3))
    assert not np.array_equal(data, toy_gaussian.make_data(1000, seed=4))
    x = np.random.default_rng(3).standard_normal((1000, 2)).astype(np.float32)
    np.testing.assert_allclose(data, x @ toy_gaussian.A + toy_gaussian.b, rtol=1e-6)
    big = toy_gaussian.make_data(200_000, seed=0)  # sampling error of the moments ~0.01
    np.testing.assert_allclose(big.mean(0), [1, 2], atol=0.02)
    np.testing.assert_allclose(np.cov(big, rowvar=False), [[1.01, 1.95], [1.95, 4.25]], atol=0.05)
    with pytest.raises(ValueError, match="n must be >= 1"):
        toy_gaussian.make_data(0)


def test_make_dataset_batches_of_8_like_load_array():
    ds = toy_gaussian.make_dataset(20, batch_size=8, seed=0)
    batches = [b.numpy() for b in ds]
    assert [len(b) for b in batches] == [8, 8, 4]  # the last partial batch is kept
    rows = np.concatenate(batches)
    data = toy_gaussian.make_data(20, seed=0)
    assert sorted(map(tuple, rows)) == sorted(map(tuple, data))  # a permutation of the data
    assert not np.array_equal(rows, data)  # shuffled
