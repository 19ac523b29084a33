"""Data sources, the Example schema, the input pipeline and embedded generators."""
from kcv.data import augment, errors, images, input, points, preprocess, schema, shapes, sources, split, tfrecords  # noqa: F401
from kcv.data.errors import DataError  # noqa: F401
