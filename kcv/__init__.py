"""kcv: the computer-vision chapter of Dive into Deep Learning on Keras 3 + TensorFlow.

The library never parses flags and never touches artifact folders; see pipelines/ for that.
"""
import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

try:
    import tensorflow as _tf  # noqa: F401
except ImportError:  # one line, as the README promises
    raise ImportError(
        "kcv needs TensorFlow: install it with `pip install 'kcv[cpu]'` or `pip install 'kcv[gpu]'`"
    ) from None

__version__ = "0.1.0"

from kcv import data, models  # noqa: E402,F401

# Register every model, layer and serializable class, so keras.models.load_model("x.keras")
# finds kcv's classes (GAN, TinySSD, BatchNorm, ...) after a plain `import kcv`.
models.list_models()
