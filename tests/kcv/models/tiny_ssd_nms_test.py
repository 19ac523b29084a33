"""outputs_to_padded(nms="kcv" | "keras_cv"): the book's NMS and keras-cv's NonMaxSuppression on
the same decoded boxes give the same detections bit for bit, except at the documented edges."""
import numpy as np
import pytest
import tensorflow as tf

from kcv.detection import multibox_prior
from kcv.models.tiny_ssd import NMS_CHOICES, outputs_to_detections, outputs_to_padded

KEYS = ("boxes", "scores", "classes", "num_detections")
# BOOK.md 1: four anchors, zero offsets, probabilities bg [0]*4, dog [.9,.8,.7,.1], cat [.1,.2,.3,.9].
BOOK_ANCHORS = [[[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95], [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]]]
BOOK_PROBS = np.array([[0.0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]], np.float32)


def both(*args, **kwargs):
    return [{k: v.numpy() for k, v in outputs_to_padded(*args, **kwargs, nms=nms).items()} for nms in NMS_CHOICES]


def assert_same(a, b):
    for key in KEYS:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def book_rows_kept(anchors, logits, offsets, score_threshold, max_detections):
    """The book's multibox_detection table, rows with class >= 0 and conf >= threshold, first D."""
    rows = outputs_to_detections(anchors, logits, offsets).numpy()
    return [r[(r[:, 0] >= 0) & (r[:, 1] >= np.float32(score_threshold))][:max_detections] for r in rows]


def test_book_four_anchor_example():
    with np.errstate(divide="ignore"):  # background probability 0: logit -inf, softmax gives 0 back
        logits = np.log(BOOK_PROBS.T)[None]  # softmax(log p) = p up to rounding; both paths see the same
    offsets = np.zeros((1, 16), np.float32)
    kcv, kc = both(BOOK_ANCHORS, logits, offsets, max_detections=4, nms_threshold=0.5, score_threshold=0.01)
    assert_same(kcv, kc)
    # The book prints [[0, .9, .10, .08, .52, .92], [1, .9, .55, .20, .90, .88], [-1, .8, ...], [-1, .7, ...]].
    np.testing.assert_array_equal(kc["num_detections"], [2])
    np.testing.assert_array_equal(kc["classes"], [[0, 1, -1, -1]])
    np.testing.assert_allclose(kc["scores"][0, :2], [0.9, 0.9], atol=1e-6)
    np.testing.assert_allclose(kc["boxes"][0, :2], [[0.1, 0.08, 0.52, 0.92], [0.55, 0.2, 0.9, 0.88]], atol=1e-6)
    assert (kc["boxes"][0, 2:] == 0).all() and (kc["scores"][0, 2:] == 0).all()
    (kept,) = book_rows_kept(BOOK_ANCHORS, logits, offsets, 0.01, 4)
    np.testing.assert_array_equal(kc["boxes"][0, :2], kept[:, 2:])
    np.testing.assert_array_equal(kc["scores"][0, :2], kept[:, 1])


@pytest.mark.parametrize("classes, score_threshold, max_detections", [(1, 0.01, 100), (1, 0.6, 100), (1, 0.01, 10),
                                                                       (3, 0.01, 100), (3, 0.3, 20), (8, 0.2, 50)])
def test_random_cases_keep_the_same_boxes(classes, score_threshold, max_detections):
    """Random logits and offsets on 1024 anchors, 3 images, several seeds: identical outputs (the
    count, boxes, scores and classes). keras-cv's NonMaxSuppression is class-agnostic over the max
    class like the book's, so this holds for several classes too."""
    anchors = multibox_prior(tf.zeros((1, 16, 16, 1)), [0.3, 0.15], [1, 2, 0.5])[:, :1024]
    num_anchors = anchors.shape[1]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        logits = rng.normal(0, 2, (3, num_anchors, classes + 1)).astype(np.float32)
        offsets = rng.normal(0, 0.5, (3, 4 * num_anchors)).astype(np.float32)
        kcv, kc = both(anchors, logits, offsets, max_detections=max_detections, nms_threshold=0.5,
                       score_threshold=score_threshold)
        assert_same(kcv, kc)
        kept = book_rows_kept(anchors, logits, offsets, score_threshold, max_detections)
        for i, rows in enumerate(kept):
            n = len(rows)
            assert kc["num_detections"][i] == n
            np.testing.assert_array_equal(kc["boxes"][i, :n], rows[:, 2:])
            np.testing.assert_array_equal(kc["classes"][i, :n], rows[:, 0].astype(np.int64))
            assert (kc["classes"][i, n:] == -1).all() and (kc["scores"][i, n:] == 0).all()


def test_overlapping_boxes_of_different_classes_are_suppressed_by_both():
    # Class-agnostic in both: anchor 1 (class 1, 0.8) overlaps anchor 0 (class 0, 0.9) with IoU 0.8
    # and is dropped. (keras-cv's MultiClassNonMaxSuppression, per class, would keep it.)
    anchors = [[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.4]]]
    probs = np.array([[[0.05, 0.9, 0.05], [0.1, 0.1, 0.8]]], np.float32)
    kcv, kc = both(anchors, np.log(probs), np.zeros((1, 8), np.float32), max_detections=2)
    assert_same(kcv, kc)
    np.testing.assert_array_equal(kc["classes"], [[0, -1]])


def test_where_they_differ_score_and_iou_exactly_at_the_threshold():
    zeros = np.zeros((1, 8), np.float32)
    # A score exactly at score_threshold: the book keeps >=, keras-cv keeps >.
    logits = np.zeros((1, 2, 2), np.float32)  # softmax [0, 0] = exactly 0.5
    kcv, kc = both([[[0.0, 0.0, 0.25, 0.25], [0.5, 0.5, 0.75, 0.75]]], logits, zeros, max_detections=2,
                   score_threshold=0.5)
    np.testing.assert_array_equal(kcv["num_detections"], [2])
    np.testing.assert_array_equal(kc["num_detections"], [0])
    # IoU exactly 0.5 (0.125 / 0.25, dyadic, so the decoded boxes are exact): the book keeps a box
    # whose IoU equals the threshold, keras-cv suppresses IoU >= threshold (its 1e-8 on the union
    # is below half an ulp of 0.25 here).
    anchors = [[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.25]]]
    logits = np.log(np.array([[[0.1, 0.9], [0.2, 0.8]]], np.float32))
    kcv, kc = both(anchors, logits, zeros, max_detections=2, nms_threshold=0.5)
    np.testing.assert_array_equal(kcv["num_detections"], [2])
    np.testing.assert_array_equal(kc["num_detections"], [1])
    np.testing.assert_array_equal(kc["boxes"][0, 0], kcv["boxes"][0, 0])


def test_graph_with_unknown_batch_and_empty_batches():
    anchors = multibox_prior(tf.zeros((1, 8, 8, 1)), [0.3, 0.15], [1, 2, 0.5])
    num_anchors = anchors.shape[1]
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, (4, num_anchors, 3)).astype(np.float32)
    offsets = rng.normal(0, 0.5, (4, 4 * num_anchors)).astype(np.float32)
    signature = [tf.TensorSpec([1, num_anchors, 4]), tf.TensorSpec([None, num_anchors, 3]),
                 tf.TensorSpec([None, 4 * num_anchors])]
    fns = {nms: tf.function(lambda a, c, b, nms=nms: outputs_to_padded(a, c, b, 16, nms=nms), input_signature=signature)
           for nms in NMS_CHOICES}
    for batch in (2, 0):
        graph = {nms: {k: v.numpy() for k, v in fn(anchors, logits[:batch], offsets[:batch]).items()}
                 for nms, fn in fns.items()}
        eager = both(anchors, logits[:batch], offsets[:batch], max_detections=16)
        assert graph["keras_cv"]["boxes"].shape == (batch, 16, 4)
        assert graph["keras_cv"]["num_detections"].shape == (batch,)
        assert_same(graph["kcv"], graph["keras_cv"])
        assert_same(graph["kcv"], eager[0])
        assert_same(eager[0], eager[1])


def test_unknown_nms_names_the_choices():
    with pytest.raises(ValueError, match="nms must be one of kcv, keras_cv, got 'soft'"):
        outputs_to_padded(BOOK_ANCHORS, np.zeros((1, 4, 3), np.float32), np.zeros((1, 16), np.float32), nms="soft")


def test_tiny_ssd_detect_with_either_nms():
    from kcv.models.tiny_ssd import tiny_ssd

    model = tiny_ssd(num_classes=2, input_shape=(64, 64, 3), seed=3)
    images = np.random.default_rng(6).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    kcv = {k: v.numpy() for k, v in model.detect(images, max_detections=30, nms="kcv").items()}
    kc = {k: v.numpy() for k, v in model.detect(images, max_detections=30, nms="keras_cv").items()}
    assert_same(kcv, kc)
    assert (kc["num_detections"] > 0).all()
