"""Data sources, the Example schema, the input pipeline and embedded generators."""
from kcv.data import augment, errors, images, input, preprocess, schema, sources, split, synthetic, tfrecords  # noqa: F401
from kcv.data.errors import DataError  # noqa: F401
