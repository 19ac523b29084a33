"""kcv.data.statistics: per-channel statistics and the whitening stem's patch moments, by hand."""
import numpy as np
import pytest

from kcv.data.images import encode_png
from kcv.data.schema import make_example
from kcv.data.statistics import image_statistics, patch_covariance
from kcv.data.tfrecords import write_shards


def _split(tmp_path, images):
    split = str(tmp_path / "Split-train")
    write_shards(iter([make_example(str(i), encode_png(im), label=0) for i, im in enumerate(images)]), split, 1)
    return split


def _patches(x, p):  # (N, H, W, C) -> (N * H' * W', p * p * C) in (row, column, channel) order, by loops
    rows = []
    for n in range(x.shape[0]):
        for i in range(x.shape[1] - p + 1):
            for j in range(x.shape[2] - p + 1):
                rows.append(np.concatenate([x[n, i + di, j + dj] for di in range(p) for dj in range(p)]))
    return np.array(rows)


def test_patch_covariance_matches_the_second_moments_of_normalised_patches(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)
    split = _split(tmp_path, images)
    stats = image_statistics(split, image_size=(6, 7), channels=3)
    x = images.astype(np.float64)
    np.testing.assert_allclose(stats["mean"], x.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], x.std(axis=(0, 1, 2)), rtol=1e-9)
    cov = np.array(patch_covariance(split, image_size=(6, 7), channels=3, mean=stats["mean"], std=stats["std"]))
    flat = _patches((x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2)), 2)  # 5 * 5 * 6 patches of 12 values
    assert cov.shape == (12, 12)
    np.testing.assert_allclose(cov, flat.T @ flat / len(flat), rtol=1e-6, atol=1e-9)
    # only the first max_images images of the split, in stored order
    two = np.array(patch_covariance(split, image_size=(6, 7), channels=3, mean=stats["mean"], std=stats["std"],
                                    max_images=2))
    first = flat[: 2 * 5 * 6]
    np.testing.assert_allclose(two, first.T @ first / len(first), rtol=1e-6, atol=1e-9)


def test_patch_covariance_refuses_bad_sizes(tmp_path):
    split = _split(tmp_path, np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="patch_size and max_images must be >= 1"):
        patch_covariance(split, image_size=(4, 4), channels=3, mean=[0, 0, 0], std=[1, 1, 1], patch_size=0)
