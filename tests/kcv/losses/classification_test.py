"""Label-smoothed cross-entropy on integer labels: hand-computed values and Keras' own loss as references."""
import math

import keras
import numpy as np
import pytest

from kcv.losses import SmoothedSparseCrossentropy


def test_value_by_hand():
    # Logits (0, ln 3) -> softmax (1/4, 3/4); label 1, smoothing 0.2 over K=2 -> target (0.1, 0.9):
    # loss = -(0.1 ln 1/4 + 0.9 ln 3/4).
    loss = SmoothedSparseCrossentropy(0.2)(np.array([1]), np.array([[0.0, math.log(3.0)]], np.float32))
    assert float(loss) == pytest.approx(-(0.1 * math.log(0.25) + 0.9 * math.log(0.75)), rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.2, 1.0])
def test_matches_keras_categorical_on_one_hot(smoothing):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=6)
    ours = SmoothedSparseCrossentropy(smoothing)(labels, logits)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
    assert float(ours) == pytest.approx(float(keras_loss(np.eye(5)[labels], logits)), rel=1e-5)
    # labels shaped (batch, 1), as some pipelines give them, are the same loss
    assert float(SmoothedSparseCrossentropy(smoothing)(labels[:, None], logits)) == pytest.approx(float(ours))
    if smoothing == 0.0:
        sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
        assert float(ours) == pytest.approx(float(sparse), rel=1e-5)


def test_config_round_trip_and_bad_value():
    loss = SmoothedSparseCrossentropy(0.3)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, SmoothedSparseCrossentropy) and again.label_smoothing == 0.3
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        SmoothedSparseCrossentropy(1.5)


def test_classification_loss_keeps_keras_sparse_loss_without_smoothing():
    from kcv.losses import classification_loss

    assert type(classification_loss(0.0)) is keras.losses.SparseCategoricalCrossentropy
    assert classification_loss(0.0).get_config()["from_logits"] is True
    assert isinstance(classification_loss(0.1), SmoothedSparseCrossentropy)
