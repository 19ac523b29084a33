"""Keras callbacks for generative models: per-epoch sample grids and real-vs-generated scatter plots."""
from kcv.callbacks.samples import PointScatter, SampleGrid  # noqa: F401
