"""absl binaries and TFX-style components. Imports kcv; kcv never imports this package.

Importing this package sets TensorFlow defaults measured on this stack before TensorFlow loads:
oneDNN on (unless the user set TF_ENABLE_ONEDNN_OPTS) and quiet C++ logs.
"""
import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
