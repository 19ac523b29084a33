"""kcv <-> keras-cv adapters: predictions, labels and box formats, eager and in tf.function."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kcv.interop import (
    convert_format,
    from_keras_cv_predictions,
    keras_cv_to_labels,
    labels_to_keras_cv,
    to_keras_cv_predictions,
)
from kcv.ops.boxes import box_center_to_corner, box_corner_to_center

DOG, CAT = [60.0, 45.0, 378.0, 516.0], [400.0, 112.0, 655.0, 493.0]  # the book's bounding-box.md


def _np(d):
    return {k: v.numpy() for k, v in d.items()}


def kcv_padded(rng, batch=3, rows=5):
    """A kcv padded dict as TinySSD.detect gives it: counts 0..rows, padding 0 / 0 / -1."""
    num = np.array([0, 2, rows][:batch], np.int32)
    valid = np.arange(rows)[None] < num[:, None]
    boxes = np.where(valid[..., None], rng.uniform(0, 1, (batch, rows, 4)), 0).astype(np.float32)
    scores = np.where(valid, -np.sort(-rng.uniform(0.01, 1, (batch, rows)), axis=1), 0).astype(np.float32)
    classes = np.where(valid, rng.integers(0, 3, (batch, rows)), -1).astype(np.int64)
    return {"boxes": boxes, "scores": scores, "classes": classes, "num_detections": num}


def test_predictions_round_trip_and_padding():
    padded = kcv_padded(np.random.default_rng(0))
    kc = _np(to_keras_cv_predictions(padded))
    assert set(kc) == {"boxes", "confidence", "classes", "num_detections"}
    valid = np.arange(5)[None] < padded["num_detections"][:, None]
    assert (kc["boxes"][~valid] == -1).all() and (kc["confidence"][~valid] == -1).all()
    assert (kc["classes"][~valid] == -1).all() and kc["classes"].dtype == np.int64
    np.testing.assert_array_equal(kc["boxes"][valid], padded["boxes"][valid])
    np.testing.assert_array_equal(kc["confidence"][valid], padded["scores"][valid])
    np.testing.assert_array_equal(kc["num_detections"], padded["num_detections"])
    back = _np(from_keras_cv_predictions(kc))
    for key in padded:  # bit-identical, dtypes included
        np.testing.assert_array_equal(back[key], padded[key])
        assert back[key].dtype == padded[key].dtype, key
    # Without num_detections: class >= 0 marks the rows, and they are counted.
    no_count = _np(to_keras_cv_predictions({k: v for k, v in padded.items() if k != "num_detections"}))
    np.testing.assert_array_equal(no_count["num_detections"], padded["num_detections"])


def test_from_keras_cv_without_counts_moves_valid_rows_first_and_accepts_ragged():
    pred = {"boxes": np.array([[[-1] * 4, [0.1, 0.1, 0.2, 0.2], [-1] * 4, [0.3, 0.3, 0.5, 0.6]]], np.float32),
            "confidence": np.array([[-1, 0.9, -1, 0.5]], np.float32), "classes": np.array([[-1, 2, -1, 0]], np.float32)}
    out = _np(from_keras_cv_predictions(pred))
    np.testing.assert_array_equal(out["num_detections"], [2])
    np.testing.assert_array_equal(out["classes"], [[2, 0, -1, -1]])
    np.testing.assert_array_equal(out["scores"], np.array([[0.9, 0.5, 0, 0]], np.float32))
    np.testing.assert_array_equal(out["boxes"][0, :2], pred["boxes"][0, [1, 3]])
    assert (out["boxes"][0, 2:] == 0).all()
    ragged = {"boxes": tf.ragged.constant([[[0.1, 0.1, 0.2, 0.2]], []], ragged_rank=1, inner_shape=(4,)),
              "confidence": tf.ragged.constant([[0.7], []]), "classes": tf.ragged.constant([[1.0], []])}
    out = _np(from_keras_cv_predictions(ragged))
    np.testing.assert_array_equal(out["num_detections"], [1, 0])
    np.testing.assert_array_equal(out["classes"], [[1], [-1]])


def test_keras_cv_non_max_suppression_output_maps_back_unchanged():
    import keras_cv

    rng = np.random.default_rng(1)
    centre, half = rng.uniform(0.2, 0.8, (2, 50, 2)), rng.uniform(0.02, 0.2, (2, 50, 2))
    boxes = np.concatenate([centre - half, centre + half], -1).astype(np.float32)
    probs = rng.uniform(0, 1, (2, 50, 3)).astype(np.float32)
    layer = keras_cv.layers.NonMaxSuppression("rel_xyxy", from_logits=False, iou_threshold=0.5,
                                              confidence_threshold=0.9, max_detections=20)
    kc = _np(layer(boxes, probs))
    back = _np(to_keras_cv_predictions(from_keras_cv_predictions(kc)))
    for key in ("boxes", "confidence", "num_detections"):
        np.testing.assert_array_equal(back[key], kc[key])
    np.testing.assert_array_equal(back["classes"], kc["classes"].astype(np.int64))


def test_labels_round_trip_bit_identical():
    rng = np.random.default_rng(2)
    labels = np.full((4, 6, 5), -1, np.float32)
    for i, n in enumerate([0, 1, 3, 6]):
        labels[i, :n, 0] = rng.integers(0, 4, n)
        labels[i, :n, 1:] = rng.uniform(0, 1, (n, 4))
    kc = _np(labels_to_keras_cv(labels))
    assert kc["boxes"].shape == (4, 6, 4) and kc["classes"].shape == (4, 6)
    pad = labels[..., 0] < 0
    assert (kc["boxes"][pad] == -1).all() and (kc["classes"][pad] == -1).all()
    np.testing.assert_array_equal(kc["boxes"][~pad], labels[..., 1:][~pad])
    back = keras_cv_to_labels(kc).numpy()
    assert back.dtype == np.float32 and back.tobytes() == labels.tobytes()
    ragged = {"boxes": tf.ragged.constant([[[0.1, 0.2, 0.3, 0.4]], []], ragged_rank=1, inner_shape=(4,)),
              "classes": tf.ragged.constant([[2.0], []])}
    np.testing.assert_array_equal(keras_cv_to_labels(ragged).numpy(),
                                  np.array([[[2, 0.1, 0.2, 0.3, 0.4]], [[-1] * 5]], np.float32))


def test_adapters_in_tf_function_with_unknown_batch():
    spec = {"boxes": tf.TensorSpec([None, None, 4]), "scores": tf.TensorSpec([None, None]),
            "classes": tf.TensorSpec([None, None], tf.int64), "num_detections": tf.TensorSpec([None], tf.int32)}
    round_trip = tf.function(lambda d: from_keras_cv_predictions(to_keras_cv_predictions(d)), input_signature=[spec])
    padded = kcv_padded(np.random.default_rng(3))
    for batch in (3, 1, 0):
        sub = {k: v[:batch] for k, v in padded.items()}
        out = _np(round_trip(sub))
        for key in padded:
            np.testing.assert_array_equal(out[key], sub[key])
    labels_fn = tf.function(lambda x: keras_cv_to_labels(labels_to_keras_cv(x)),
                            input_signature=[tf.TensorSpec([None, None, 5])])
    labels = np.array([[[1, 0.1, 0.2, 0.3, 0.4], [-1] * 5]], np.float32)
    assert labels_fn(labels).numpy().tobytes() == labels.tobytes()
    conv = tf.function(lambda b: convert_format(b, "xyxy", "center_xywh"),
                       input_signature=[tf.TensorSpec([None, None, 4])])
    b = np.array([[DOG, CAT]], np.float32)
    assert conv(b).numpy().tobytes() == box_corner_to_center(b).numpy().tobytes()


def _bits(x):
    return np.asarray(x).view(np.uint32)


@pytest.mark.parametrize("graph", [False, True])
def test_keras_cv_center_conversion_is_the_books_bit_for_bit(graph):
    """keras-cv's xyxy <-> center_xywh equals kcv.ops.boxes (the book's box_corner_to_center /
    box_center_to_corner) bit for bit: the book's dog and cat boxes, their round trip, and a million
    random float32 boxes over many magnitudes (and signs, subnormals, zero widths)."""
    rng = np.random.default_rng(4)
    scale = 10.0 ** rng.uniform(-40, 37, (1_000_000, 1))
    rand = (rng.normal(size=(1_000_000, 4)) * scale).astype(np.float32)
    rand[:1000, 2:] = rand[:1000, :2]  # zero width and height
    cases = [np.array([DOG, CAT], np.float32), rand]
    to_c = lambda b: convert_format(b, "xyxy", "center_xywh")  # noqa: E731
    to_x = lambda b: convert_format(b, "center_xywh", "xyxy")  # noqa: E731
    ours_c, ours_x = box_corner_to_center, box_center_to_corner
    if graph:
        to_c, to_x, ours_c, ours_x = (tf.function(f) for f in (to_c, to_x, ours_c, ours_x))
    for boxes in cases:
        centre = to_c(boxes).numpy()
        np.testing.assert_array_equal(_bits(centre), _bits(ours_c(boxes).numpy()))
        np.testing.assert_array_equal(_bits(to_x(centre).numpy()), _bits(ours_x(centre).numpy()))
    dog_cat = cases[0]
    assert (to_x(to_c(dog_cat)).numpy() == dog_cat).all()  # the book prints all True


def test_convert_format_ranks_dicts_and_relative_formats():
    boxes = np.array([DOG, CAT], np.float32)
    one = convert_format(boxes[0], "xyxy", "xywh").numpy()
    np.testing.assert_array_equal(one, [60, 45, 318, 471])
    deep = convert_format(np.tile(boxes, (2, 3, 1, 1)), "xyxy", "yxyx").numpy()
    assert deep.shape == (2, 3, 2, 4) and (deep[1, 2] == boxes[:, [1, 0, 3, 2]]).all()
    rel = convert_format({"boxes": boxes[None], "classes": np.array([[0, 1]])}, "xyxy", "rel_xyxy",
                         image_shape=(561, 728, 3))
    np.testing.assert_allclose(rel["boxes"].numpy()[0, 0], [60 / 728, 45 / 561, 378 / 728, 516 / 561], rtol=1e-6)
    assert "classes" in rel


def test_importing_kcv_interop_does_not_import_keras_cv():
    code = "import sys, kcv, kcv.interop, kcv.interop.keras_cv, kcv.models.tiny_ssd\nprint('keras_cv' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
