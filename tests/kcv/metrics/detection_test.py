"""Detection mAP against hand-computed cases (COCO 101-point interpolation)."""
import math

import numpy as np
import pytest

from kcv.metrics import (
    COCO_IOU_THRESHOLDS,
    average_precision_table,
    coco_map,
    detection_metrics,
    from_book_rows,
    from_labels,
    from_padded,
    mean_average_precision,
)

A = [0, 0, 10, 10]
B = [20, 20, 30, 30]
FAR = [50, 50, 60, 60]
TWO_GT = [(np.array([A, B], float), np.array([0, 0]))]


def det(boxes, scores, classes=None):
    classes = [0] * len(scores) if classes is None else classes
    return (np.array(boxes, float), np.array(scores, float), np.array(classes))


def test_perfect_detections_give_one():
    assert mean_average_precision([det([A, B], [0.9, 0.8])], TWO_GT) == pytest.approx(1.0)
    assert coco_map([det([A, B], [0.9, 0.8])], TWO_GT) == pytest.approx(1.0)


def test_false_positive_ranked_first():
    # Ranked: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1; the envelope is 2/3
    # everywhere, so all 101 recall levels read 2/3.
    value = mean_average_precision([det([FAR, A, B], [0.9, 0.8, 0.7])], TWO_GT)
    assert value == pytest.approx(2 / 3)


def test_false_positive_ranked_last_costs_nothing():
    # TP, TP, FP: recall 1 is reached at precision 1 before the FP.
    assert mean_average_precision([det([A, B, FAR], [0.9, 0.8, 0.7])], TWO_GT) == pytest.approx(1.0)


def test_duplicate_detection_counts_once():
    # A (0.9) TP, A again (0.8) FP, B (0.7) TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # Envelope: 1 for recall levels 0..0.50 (51 levels), 2/3 for 0.51..1 (50 levels).
    value = mean_average_precision([det([A, A, B], [0.9, 0.8, 0.7])], TWO_GT)
    assert value == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)  # 0.83498...


def test_missed_object():
    # Only A found: recall 1/2 at precision 1; levels above 0.50 are never reached -> 0.
    assert mean_average_precision([det([A], [0.9])], TWO_GT) == pytest.approx(51 / 101)


def test_no_detections_give_zero_and_no_ground_truth_is_skipped():
    assert mean_average_precision([det([], [])], TWO_GT) == 0.0
    # Class 1 has no ground truth: NaN in the table and left out of the mean.
    table = average_precision_table([det([A, B, FAR], [0.9, 0.8, 0.7], [0, 0, 1])], TWO_GT, num_classes=2)
    assert table.shape == (1, 2)
    assert table[0, 0] == pytest.approx(1.0) and np.isnan(table[0, 1])
    # No ground truth at all: nothing to score, NaN.
    assert math.isnan(mean_average_precision([det([A], [0.9])], [(np.zeros((0, 4)), np.zeros(0))]))


def test_iou_thresholds_and_coco_average():
    # Detection [0, 0, 10, 6.2] on gt [0, 0, 10, 10]: IoU = 62 / 100 = 0.62, a match at
    # t = 0.50, 0.55, 0.60 and a miss at 0.65 ... 0.95 -> COCO mAP 3/10.
    gts = [(np.array([A], float), np.array([0]))]
    dets = [det([[0, 0, 10, 6.2]], [0.9])]
    assert mean_average_precision(dets, gts, iou_thresholds=(0.5,)) == pytest.approx(1.0)
    assert mean_average_precision(dets, gts, iou_thresholds=(0.75,)) == 0.0
    assert coco_map(dets, gts) == pytest.approx(0.3)
    # COCO's headline thresholds are 0.50:0.05:0.95, ten of them
    np.testing.assert_allclose(COCO_IOU_THRESHOLDS, [0.5 + 0.05 * i for i in range(10)], atol=1e-12)


def test_classes_must_agree_and_per_class_mean():
    # Class 0: perfect (AP 1). Class 1: one gt, its only detection is labelled class 0 -> AP 0
    # for class 1, and that extra class-0 detection ranks below class 0's TP -> class 0 stays 1.
    gts = [(np.array([A, B], float), np.array([0, 1]))]
    dets = [det([A, B], [0.9, 0.8], [0, 0])]
    table = average_precision_table(dets, gts)
    np.testing.assert_allclose(table, [[1.0, 0.0]])
    assert mean_average_precision(dets, gts) == pytest.approx(0.5)


def test_ranking_pools_images():
    # Image 1: TP at 0.6. Image 2: FP at 0.9 and TP at 0.5. Pooled ranking FP, TP, TP gives the
    # same 2/3 as the single-image case.
    gts = [(np.array([A], float), np.array([0])), (np.array([B], float), np.array([0]))]
    dets = [det([A], [0.6]), det([FAR, B], [0.9, 0.5])]
    assert mean_average_precision(dets, gts) == pytest.approx(2 / 3)


def test_max_detections_cuts_per_image():
    # With max_detections=1 only the FAR box (highest score) survives: AP 0.
    gts = [(np.array([A], float), np.array([0]))]
    dets = [det([FAR, A], [0.9, 0.8])]
    assert mean_average_precision(dets, gts, max_detections=1) == 0.0
    assert mean_average_precision(dets, gts, max_detections=2) == pytest.approx(0.5)


def test_converters_and_metrics_dict():
    # Padded batch with class -1 rows; labels with padding rows.
    boxes = np.array([[A, B, [0, 0, 0, 0]]], float) / 100
    scores = np.array([[0.9, 0.8, 0.0]])
    classes = np.array([[0, 0, -1]])
    labels = np.array([[[0, *np.divide(A, 100)], [0, *np.divide(B, 100)], [-1, 0, 0, 0, 0]]])
    dets = from_padded(boxes, scores, classes, num_detections=np.array([2]))
    assert len(dets[0][0]) == 2
    gts = from_labels(labels)
    out = detection_metrics(dets, gts, num_classes=1)
    assert out["map_50"] == pytest.approx(1.0) and out["map"] == pytest.approx(1.0)
    assert out["num_ground_truths"] == 2 and out["num_detections"] == 2
    rows = np.array([[[0, 0.9, *np.divide(A, 100)], [-1, 0.99, *np.divide(B, 100)]]])
    book = from_book_rows(rows)  # the class -1 row is ignored even with a high confidence
    assert mean_average_precision(book, gts) == pytest.approx(51 / 101)


def test_random_case_against_keras_cv_box_coco_metrics():
    """Cross-check with keras-cv's BoxCOCOMetrics (pycocotools inside) where it can run."""
    pytest.importorskip("pycocotools", reason="keras-cv's BoxCOCOMetrics needs pycocotools, not installed")
    keras_cv = pytest.importorskip("keras_cv")
    rng = np.random.default_rng(0)
    images, per_image, det_per_image, classes = 6, 4, 8, 3

    def boxes(n):
        xy = rng.uniform(0, 80, (n, 2))
        wh = rng.uniform(10, 40, (n, 2))
        return np.concatenate([xy, xy + wh], 1)

    gt_boxes = np.stack([boxes(per_image) for _ in range(images)])
    gt_classes = rng.integers(0, classes, (images, per_image))
    # Detections: jittered copies of the ground truth plus random boxes.
    jitter = gt_boxes + rng.normal(0, 3, gt_boxes.shape)
    d_boxes = np.concatenate([jitter, np.stack([boxes(det_per_image - per_image) for _ in range(images)])], 1)
    d_classes = np.concatenate([gt_classes, rng.integers(0, classes, (images, det_per_image - per_image))], 1)
    d_scores = rng.uniform(0, 1, (images, det_per_image))
    metric = keras_cv.metrics.BoxCOCOMetrics(bounding_box_format="xyxy", evaluate_freq=1)
    metric.update_state(
        {"boxes": gt_boxes.astype("float32"), "classes": gt_classes.astype("float32")},
        {"boxes": d_boxes.astype("float32"), "classes": d_classes.astype("float32"),
         "confidence": d_scores.astype("float32")},
    )
    theirs = {k: float(v) for k, v in metric.result(force=True).items()}
    dets = [(d_boxes[i], d_scores[i], d_classes[i]) for i in range(images)]
    gts = [(gt_boxes[i], gt_classes[i]) for i in range(images)]
    assert coco_map(dets, gts) == pytest.approx(theirs["MaP"], abs=1e-6)
    assert mean_average_precision(dets, gts) == pytest.approx(theirs["MaP@[IoU=50]"], abs=1e-6)
    assert mean_average_precision(dets, gts, iou_thresholds=(0.75,)) == pytest.approx(theirs["MaP@[IoU=75]"], abs=1e-6)
