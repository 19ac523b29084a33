"""Toy GAN data: samples of the book's X·A + b, checked against the book's numbers, not our constants."""
import numpy as np
import pytest

from kcv.data.synthetic import toy_gaussian

# The book (GAN section): A = [[1, 2], [-0.1, 0.5]], b = [1, 2]; it prints the data covariance AᵀA.
BOOK_A = np.array([[1.0, 2.0], [-0.1, 0.5]])
BOOK_B = np.array([1.0, 2.0])
BOOK_COV = np.array([[1.01, 1.95], [1.95, 4.25]])


def test_samples_are_x_times_book_a_plus_book_b():
    data = toy_gaussian.make_data(1000, seed=3)
    assert data.shape == (1000, 2) and data.dtype == np.float32
    x = np.random.default_rng(3).standard_normal((1000, 2))  # the documented X ~ N(0, I)
    np.testing.assert_allclose(data, x @ BOOK_A + BOOK_B, rtol=1e-5, atol=1e-5)  # float32 rounding
    np.testing.assert_array_equal(data, toy_gaussian.make_data(1000, seed=3))
    assert not np.array_equal(data, toy_gaussian.make_data(1000, seed=4))
    with pytest.raises(ValueError, match="n must be >= 1"):
        toy_gaussian.make_data(0)


def test_sample_moments_match_the_books_distribution():
    n = 100_000
    data = toy_gaussian.make_data(n, seed=0).astype(np.float64)
    # Standard errors for n Gaussian samples: mean_j ± sqrt(Σ_jj / n) (0.003 and 0.007), and the
    # sample covariance entry Σ_ij ± sqrt((Σ_ii Σ_jj + Σ_ij²) / n) (0.005, 0.009, 0.019).
    # 5 standard errors: a wrong A or b (e.g. A Aᵀ = [[5, 0.9], [0.9, 0.26]] for AᵀA) is far outside,
    # a correct generator fails with probability below 1e-6 per entry.
    se_mean = np.sqrt(np.diag(BOOK_COV) / n)
    se_cov = np.sqrt((np.outer(np.diag(BOOK_COV), np.diag(BOOK_COV)) + BOOK_COV**2) / n)
    assert np.all(np.abs(data.mean(0) - BOOK_B) < 5 * se_mean)
    assert np.all(np.abs(np.cov(data, rowvar=False) - BOOK_COV) < 5 * se_cov)
    # The module's exact moments are the book's printed ones.
    np.testing.assert_allclose(toy_gaussian.true_mean(), BOOK_B, atol=1e-6)
    np.testing.assert_allclose(toy_gaussian.true_covariance(), BOOK_COV, atol=1e-6)


def test_make_dataset_batches_of_8_like_load_array():
    ds = toy_gaussian.make_dataset(20, batch_size=8, seed=0)
    batches = [b.numpy() for b in ds]
    assert [len(b) for b in batches] == [8, 8, 4]  # the last partial batch is kept
    rows = np.concatenate(batches)
    data = toy_gaussian.make_data(20, seed=0)
    assert sorted(map(tuple, rows)) == sorted(map(tuple, data))  # a permutation of the data
    assert not np.array_equal(rows, data)  # shuffled
