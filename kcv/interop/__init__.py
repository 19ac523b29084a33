"""Adapters between kcv's formats and other libraries' (keras-cv). Importing this package imports
no third-party detection library: each adapter imports its peer lazily, inside the function."""
from kcv.interop.keras_cv import (  # noqa: F401
    convert_format,
    from_keras_cv_predictions,
    keras_cv_to_labels,
    labels_to_keras_cv,
    to_keras_cv_predictions,
)
