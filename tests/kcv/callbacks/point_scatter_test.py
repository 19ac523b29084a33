"""PointScatter draws the book's picture: generated points over the real ones, every k-th epoch and the last."""
import keras
import numpy as np
from PIL import Image

from kcv.callbacks import PointScatter


class _Constant(keras.Model):
    """A 'generator' whose every sample is the point `at`: (n, 2) noise -> (n, 2)."""

    latent_dim = 2

    def __init__(self, at):
        super().__init__()
        self.at = np.asarray(at, np.float32)

    def call(self, noise, training=False):
        return keras.ops.zeros_like(noise) + self.at


def _count(path, rgb):
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(img - np.array(rgb)).max(axis=2) < 30).sum())


def test_generated_points_are_drawn_over_the_real_ones(tmp_path):
    # Three real points; every generated point sits exactly on one of them. Generated on top, the
    # orange marker hides a blue one: measured 22 orange / 27 blue pixels (the legend has one
    # marker of each). Real on top hides the orange marker instead: 9 / 36.
    real = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]], np.float32)
    cb = PointScatter(str(tmp_path), real, count=3)
    cb.set_model(_Constant([0.5, 0.5]))
    cb.on_epoch_end(0)
    orange, blue = _count(cb.paths[0], (255, 127, 14)), _count(cb.paths[0], (31, 119, 180))  # tab: colours
    assert blue > 0 and orange / blue > 0.5, (orange, blue)


def test_every_kth_epoch_and_the_last(tmp_path):
    cb = PointScatter(str(tmp_path), np.random.default_rng(0).normal(size=(20, 2)), count=10, every=4)
    cb.set_model(_Constant([0.0, 0.0]))
    cb.set_params({"epochs": 10})
    for epoch in range(10):
        cb.on_epoch_end(epoch)
    assert [p.split("/")[-1] for p in cb.paths] == ["epoch_004.png", "epoch_008.png", "epoch_010.png"]
