"""Keras callbacks that draw: GAN sample grids and scatter plots, TensorBoard scalars and pictures."""
from kcv.callbacks.samples import PointScatter, SampleGrid  # noqa: F401
from kcv.callbacks.tensorboard import ConfusionMatrixSummary, DetectionPictures, TrainingScalars  # noqa: F401
