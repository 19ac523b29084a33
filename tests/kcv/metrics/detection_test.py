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
from kcv.metrics.detection import average_recall

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


# ---- keras-cv's dictionaries and BoxCOCOMetrics --------------------------------------------------
def _pad(rows, n, value=-1.0):
    """List of (k_i, ...) arrays -> (B, n, ...) float32 padded with `value`."""
    out = np.full((len(rows), n) + rows[0].shape[1:], value, np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def random_case(seed, images=6, classes=4, max_gt=6, max_det=100, empty_image=False):
    """Boxes in pixels (640 x 480 images), 1..max_gt objects and 1..max_det detections per image:
    jittered copies of the ground truth (noise from 1 to 30 px, so IoUs span the thresholds, class
    right or wrong) and random boxes, confidence in [0.05, 1). Returns keras-cv's y_true, y_pred
    dicts (-1 padding) and the same as per-image lists. empty_image: image 0 gets no detections."""
    rng = np.random.default_rng(seed)

    def boxes(n):
        xy = rng.uniform(0, 560, (n, 2)) * [1, 0.75]
        wh = rng.uniform(8, 160, (n, 2))
        return np.concatenate([xy, xy + wh], 1).astype(np.float32)

    gt_b, gt_c, d_b, d_s, d_c = [], [], [], [], []
    for i in range(images):
        g = int(rng.integers(1, max_gt + 1))
        gb, gc = boxes(g), rng.integers(0, classes, g).astype(np.float32)
        n = 0 if (empty_image and i == 0) else int(rng.integers(1, max_det + 1))
        copies = rng.integers(0, g, n)
        jitter = gb[copies] + rng.normal(0, 1, (n, 4)) * rng.uniform(1, 30, (n, 1))
        wrong = rng.uniform(size=n) < 0.2
        dc = np.where(wrong, rng.integers(0, classes, n), gc[copies]).astype(np.float32)
        rand = rng.uniform(size=n) < 0.3
        db = np.where(rand[:, None], boxes(n), np.sort(jitter.reshape(n, 2, 2), axis=1).reshape(n, 4))
        gt_b.append(gb), gt_c.append(gc), d_b.append(db.astype(np.float32))
        d_s.append(rng.uniform(0.05, 1, n).astype(np.float32)), d_c.append(dc)
    num = np.array([len(s) for s in d_s], np.int32)
    d_max = max(1, int(num.max()))
    y_true = {"boxes": _pad(gt_b, max_gt), "classes": _pad(gt_c, max_gt)}
    y_pred = {"boxes": _pad(d_b, d_max), "confidence": _pad(d_s, d_max), "classes": _pad(d_c, d_max),
              "num_detections": num}
    per_image = ([(b, s, c) for b, s, c in zip(d_b, d_s, d_c)], list(zip(gt_b, gt_c)))
    return y_true, y_pred, per_image


def box_coco_metrics(y_true, y_pred):
    import keras_cv  # a test dependency (setup.py's test extra, with pycocotools): never skipped

    metric = keras_cv.metrics.BoxCOCOMetrics(bounding_box_format="xyxy", evaluate_freq=1)
    metric.update_state(y_true, {k: v for k, v in y_pred.items() if k != "num_detections"})
    return {k: float(v) for k, v in metric.result(force=True).items()}


COMPARED = ("MaP", "MaP@[IoU=50]", "MaP@[IoU=75]", "Recall@[max_detections=100]")


def ours(dets, gts):
    return {
        "MaP": coco_map(dets, gts),
        "MaP@[IoU=50]": mean_average_precision(dets, gts, iou_thresholds=(0.5,)),
        "MaP@[IoU=75]": mean_average_precision(dets, gts, iou_thresholds=(0.75,)),
        "Recall@[max_detections=100]": average_recall(dets, gts),
    }


@pytest.mark.parametrize("seed, classes", [(0, 1), (1, 3), (2, 5), (3, 8), (4, 2)])
def test_random_cases_agree_with_keras_cv_box_coco_metrics(seed, classes):
    """kcv's mAP against keras_cv.metrics.BoxCOCOMetrics (pycocotools' COCOeval inside): several
    seeds and class counts, pixel boxes, 1..100 detections per image, keras-cv's padded dicts.
    Agreement is to float32 rounding (BoxCOCOMetrics returns float32; measured <= 1.2e-8)."""
    y_true, y_pred, (dets, gts) = random_case(seed, classes=classes)
    theirs = box_coco_metrics(y_true, y_pred)
    mine = ours(y_pred, y_true)  # keras-cv's batch dicts, as BoxCOCOMetrics takes them
    assert mine == ours(dets, gts)  # the same numbers from per-image lists
    for key in COMPARED:
        assert mine[key] == pytest.approx(theirs[key], abs=1e-6), key
        assert 0.0 < mine[key] < 1.0, key  # a case that exercises the ranking, not a trivial 0 or 1
    assert detection_metrics(y_pred, y_true)["map"] == pytest.approx(theirs["MaP"], abs=1e-6)


def test_box_coco_metrics_leaves_out_images_without_predictions():
    """Where the two differ by design: BoxCOCOMetrics evaluates only images with a prediction
    (confidence > 0), so an image whose objects were all missed does not count there. kcv counts
    those objects as missed, and equals BoxCOCOMetrics when that image is left out."""
    y_true, y_pred, (dets, gts) = random_case(7, classes=3, empty_image=True)
    theirs = box_coco_metrics(y_true, y_pred)
    without_first = ours(dets[1:], gts[1:])
    for key in COMPARED:
        assert without_first[key] == pytest.approx(theirs[key], abs=1e-6), key
    everything = ours(y_pred, y_true)
    for key in ("MaP", "Recall@[max_detections=100]"):
        assert everything[key] < theirs[key], key


def test_keras_cv_dicts_padding_counts_and_formats():
    # keras-cv prediction padding (-1 rows) and num_detections; kcv's padded dict ("scores",
    # padding 0 / class -1); ragged tensors; and one unbatched image.
    import tensorflow as tf

    gt = {"boxes": np.array([[A, B, [-1] * 4]], np.float32), "classes": np.array([[0, 0, -1]], np.float32)}
    kc = {"boxes": np.array([[FAR, A, B, [-1] * 4]], np.float32),
          "confidence": np.array([[0.9, 0.8, 0.7, -1]], np.float32), "classes": np.array([[0, 0, 0, -1]], np.float32)}
    assert mean_average_precision(kc, gt) == pytest.approx(2 / 3)  # FP, TP, TP
    assert mean_average_precision({**kc, "num_detections": np.array([2])}, gt) == pytest.approx((51 * 0.5) / 101)
    padded = {"boxes": np.array([[A, B, [0] * 4]], np.float32), "scores": np.array([[0.9, 0.8, 0]], np.float32),
              "classes": np.array([[0, 0, -1]]), "num_detections": np.array([2], np.int32)}
    assert coco_map(padded, gt) == pytest.approx(1.0)
    ragged_gt = {"boxes": tf.ragged.constant([[A, B], [A]], ragged_rank=1, dtype=tf.float32),
                 "classes": tf.ragged.constant([[0, 0], [0]], dtype=tf.float32)}
    ragged_kc = {"boxes": tf.ragged.constant([[A, B], [FAR]], ragged_rank=1, dtype=tf.float32),
                 "confidence": tf.ragged.constant([[0.9, 0.8], [0.95]]), "classes": tf.ragged.constant([[0, 0], [0]])}
    # Pooled: FAR 0.95 FP, A 0.9 TP, B 0.8 TP, image 2's A missed -> precision 0, 1/2, 2/3 at recall 0, 1/3, 2/3.
    assert mean_average_precision(ragged_kc, ragged_gt) == pytest.approx((67 * 2 / 3) / 101)
    one = {"boxes": np.array([A, B], np.float32), "confidence": np.array([0.9, 0.8]), "classes": np.array([0, 0])}
    assert mean_average_precision(one, {"boxes": np.array([A, B]), "classes": np.array([0, 0])}) == pytest.approx(1.0)
    out = detection_metrics(kc, gt)
    assert out["num_images"] == 1 and out["num_ground_truths"] == 2 and out["num_detections"] == 3
    with pytest.raises(ValueError, match="confidence"):
        coco_map({"boxes": kc["boxes"], "classes": kc["classes"]}, gt)
