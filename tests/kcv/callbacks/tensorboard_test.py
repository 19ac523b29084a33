"""TensorBoard callbacks: scalars and images land in <log_dir>/train, the model is untouched."""
import glob
import os

import keras
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from kcv.callbacks.tensorboard import ConfusionMatrixSummary, TrainingScalars, optimizers


def _events(log_dir):
    acc = EventAccumulator(os.path.join(log_dir, "train"), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    return model


def test_learning_rate_speed_and_confusion_matrix_are_written(tmp_path):
    model = _model()
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    scalars = TrainingScalars(str(tmp_path), global_batch=8)
    confusion = ConfusionMatrixSummary(str(tmp_path), data, ["a", "b", "c"])
    model.fit(data, epochs=2, verbose=0, callbacks=[scalars, confusion])
    acc = _events(str(tmp_path))
    # TF2 summaries are tensors (scalars: rank 0; images: [width, height, PNG, ...])
    assert {"learning_rate/optimizer", "speed/images_per_second"} <= set(acc.Tags()["tensors"])
    assert [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("learning_rate/optimizer")] == [
        np.float32(0.05)] * 2
    assert all(tf.make_ndarray(e.tensor_proto) > 0 for e in acc.Tensors("speed/images_per_second"))
    assert [e.step for e in acc.Tensors("eval/confusion_matrix")] == [0, 1]
    assert confusion.matrix.sum() == 32 and confusion.matrix.shape == (3, 3)


def test_optimizers_finds_each_optimizer_once():
    model = _model()
    assert list(optimizers(model)) == ["optimizer"]
    model.g_optimizer = model.optimizer  # the same object under its own name (as kcv's GAN)
    model.d_optimizer = keras.optimizers.Adam(0.01)
    assert list(optimizers(model)) == ["d_optimizer", "g_optimizer"]
