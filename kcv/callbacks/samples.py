"""Per-epoch pictures of what a GAN generates, always from the same noise so epochs compare.

Both callbacks expect `self.model` to be a `kcv.models.GAN` (or any model with `latent_dim` whose
call maps flat noise (n, latent_dim) to samples); pass `latent_dim` to use another model.
Files are `<directory>/epoch_XXX.png` with XXX the 1-based epoch number (epoch_001.png after the
first epoch), as the book counts epochs. With `log_dir` the same picture also goes to TensorBoard
(`<log_dir>/train`, tags samples/grid and samples/scatter, step = 0-based epoch).
"""
from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from kcv.callbacks.tensorboard import SummaryCallback, write_image
from kcv.viz.grids import image_grid


class _FixedNoise(SummaryCallback):
    def __init__(self, directory: str, count: int, seed: int, latent_dim: int | None,
                 log_dir: str | None = None) -> None:
        super().__init__(log_dir)
        if count < 1:
            raise ValueError(f"{type(self).__name__}: need at least one sample, got {count}")
        self.directory = directory
        self.count = count
        self.seed = seed
        self.latent_dim = latent_dim
        self.noise: np.ndarray | None = None
        self.paths: list[str] = []

    def _generate(self) -> np.ndarray:
        if self.noise is None:
            latent_dim = self.latent_dim or getattr(self.model, "latent_dim", None)
            if not latent_dim:
                raise ValueError(f"{type(self).__name__}: the model has no latent_dim; pass latent_dim=")
            rng = np.random.default_rng(self.seed)
            self.noise = rng.standard_normal((self.count, latent_dim)).astype(np.float32)
        return keras.ops.convert_to_numpy(self.model(self.noise, training=False))

    def _path(self, epoch: int) -> str:
        os.makedirs(self.directory, exist_ok=True)
        return os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png")


class SampleGrid(_FixedNoise):
    """Save a grid of generated images from fixed noise after every `every`-th epoch.

    Args:
        directory: where `epoch_XXX.png` files go (created).
        count: number of samples, tiled `ncols` per row.
        seed: seed of the fixed noise (numpy default_rng), drawn once.
        value_range: range of the generator's output (tanh: (-1, 1)) mapped to 0..255.
        log_dir: TensorBoard folder for the samples/grid image (None: PNGs only).
    """

    def __init__(self, directory: str, count: int = 64, ncols: int = 8, seed: int = 0,
                 every: int = 1, latent_dim: int | None = None,
                 value_range: tuple[float, float] = (-1.0, 1.0), log_dir: str | None = None) -> None:
        super().__init__(directory, count, seed, latent_dim, log_dir)
        self.ncols, self.every, self.value_range = ncols, every, value_range

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        path = self._path(epoch)
        grid = image_grid(self._generate(), self.ncols, path, value_range=self.value_range)
        self.paths.append(path)
        if self.log_dir:
            write_image(self.writer(), "samples/grid", grid, epoch)


class PointScatter(_FixedNoise):
    """Save a scatter plot of real points (blue) with generated points (orange) drawn over them.

    The book's picture for its toy GAN: 100 real points and 100 generated from fixed noise, the
    generated ones on top. Axis limits come from the real points, so the plots of successive
    epochs line up.

    Args:
        directory: where `epoch_XXX.png` files go (created).
        real: (n, 2) real samples; the first `count` are drawn.
        count: number of real and of generated points drawn (the book: 100).
        seed: seed of the fixed noise.
        log_dir: TensorBoard folder for the samples/scatter image (None: PNGs only).
        every: draw after every `every`-th epoch, and after the last one (`params["epochs"]`,
            which fit and pipelines.loop set).
    """

    def __init__(self, directory: str, real: Any, count: int = 100, seed: int = 0,
                 latent_dim: int | None = None, log_dir: str | None = None, every: int = 1) -> None:
        super().__init__(directory, count, seed, latent_dim, log_dir)
        if every < 1:
            raise ValueError(f"PointScatter: every must be >= 1, got {every}")
        self.every = every
        self.real = np.asarray(real, np.float32)[:count]
        if self.real.ndim != 2 or self.real.shape[1] != 2:
            raise ValueError(f"PointScatter: real must be (n, 2) points; got shape {np.shape(real)}")
        lo, hi = self.real.min(0), self.real.max(0)
        margin = 0.25 * (hi - lo) + 1e-3
        self.limits = (lo - margin, hi + margin)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        last = (self.params or {}).get("epochs")
        if (epoch + 1) % self.every and epoch + 1 != last:
            return
        from matplotlib.figure import Figure  # no pyplot: no global figure state, Agg for PNG

        fake = self._generate().reshape(self.count, -1)
        fig = Figure(figsize=(4, 4), dpi=80)
        ax = fig.add_subplot()
        ax.scatter(self.real[:, 0], self.real[:, 1], s=8, c="tab:blue", label="real", zorder=1)
        ax.scatter(fake[:, 0], fake[:, 1], s=8, c="tab:orange", label="generated", zorder=2)
        ax.set_xlim(self.limits[0][0], self.limits[1][0])
        ax.set_ylim(self.limits[0][1], self.limits[1][1])
        ax.set_title(f"epoch {epoch + 1}")
        ax.legend(loc="upper left")
        path = self._path(epoch)
        fig.savefig(path, format="png")
        self.paths.append(path)
        if self.log_dir:
            from kcv.viz.figures import figure_to_array

            write_image(self.writer(), "samples/scatter", figure_to_array(fig), epoch)
