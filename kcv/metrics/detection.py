"""Mean average precision for object detection, computed the way COCO's evaluation does it.

Per class and IoU threshold t (pycocotools' `evaluateImg` + `accumulate`, area range "all", no
crowd boxes):
  1. In each image, that class's detections are sorted by score (stable, so equal scores keep
     their input order) and cut to `max_detections`. Each detection in turn takes the unmatched
     ground-truth box of the same class with the highest IoU >= t (on equal IoU the later box, as
     pycocotools); it is a true positive if it found one, else a false positive. So a second
     detection of an already matched object is a false positive: duplicates count once.
  2. The detections of all images are ranked by score (stable, images in input order);
     recall = TP / #ground truth, precision = TP / (TP + FP) after each one.
  3. Precision is made non-increasing from the right (the interpolated precision envelope) and
     read at the 101 recall levels 0, 0.01, ..., 1 (the first rank whose recall reaches each
     level; 0 where recall never reaches it). AP is the mean of those 101 values.
mAP is the mean AP over classes that have ground truth (others are NaN in the table, as COCO
skips them) and over the thresholds; COCO's headline mAP uses t = 0.50, 0.55, ..., 0.95.

Boxes are xyxy in any one unit (pixels or normalised; IoU does not care), IoU is
inter / (area1 + area2 - inter) with no +1. Everything is numpy; inputs may be tensors.

Inputs: `detections` / `ground_truths` are either per-image sequences (item i = image i, a tuple
or a dict, see `Detections` / `GroundTruth`) or one dict for a whole batch:
  detections:    keras-cv's prediction dict {"boxes" (B, D, 4), "confidence" (B, D),
                 "classes" (B, D)[, "num_detections" (B,)]} (padding -1, as
                 keras_cv.layers.NonMaxSuppression gives it), or kcv's padded dict (the exported
                 detector, `TinySSD.detect`) with "scores" instead of "confidence";
  ground truths: keras-cv's {"boxes" (B, G, 4), "classes" (B, G)} with -1 padding
                 (`kcv.data.input.detection_dataset`'s labels).
Dense or ragged; rows past num_detections (when given) and rows with class < 0 are padding.

Cross-checked against keras_cv.metrics.BoxCOCOMetrics (pycocotools) in
tests/kcv/metrics/detection_test.py: MaP, MaP@[IoU=50], MaP@[IoU=75] and
Recall@[max_detections=100] agree to 1e-6 on random cases. They differ by design where
BoxCOCOMetrics evaluates only the images that have at least one prediction with confidence > 0
(its `params.imgIds` are the predictions' images): an image with objects and no detections
counts its objects as missed here, and is left out there (which raises its mAP); and it counts
a prediction as valid when confidence > 0, not class >= 0.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(np.linspace(0.5, 0.95, 10))  # pycocotools' exact values
RECALL_LEVELS = np.linspace(0.0, 1.0, 101)

Detections = Any  # (boxes (N, 4), scores (N,), classes (N,)) or a dict with those keys
GroundTruth = Any  # (boxes (M, 4), classes (M,)) or a dict with boxes / classes


def _np(x, dtype) -> np.ndarray:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=dtype)


def _is_ragged(x) -> bool:
    return hasattr(x, "nrows") and hasattr(x, "to_tensor")  # tf.RaggedTensor, without importing TF


def _rows(x) -> list:
    """Per-image rows of a batch (dense array/tensor or tf.RaggedTensor) -> list of numpy arrays."""
    if _is_ragged(x):
        return [x[i].numpy() for i in range(int(x.nrows()))]
    return list(_np(x, np.float64))


def _unbatched(classes) -> bool:
    """A dict of one image: classes (N,) rather than (B, N)."""
    return not _is_ragged(classes) and _np(classes, np.float64).ndim == 1


def _batch_detections(dets: Mapping) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A batch dict (keras-cv "confidence" or kcv "scores"; optional "num_detections") -> per image."""
    if "confidence" in dets:
        score_key = "confidence"
    elif "scores" in dets:
        score_key = "scores"
    else:
        raise ValueError(f"detections dict needs 'confidence' (keras-cv) or 'scores' (kcv), got keys {sorted(dets)}")
    if _unbatched(dets["classes"]):
        n = dets.get("num_detections")
        n = None if n is None else int(_np(n, np.int64).reshape(-1)[0])
        return [(_np(dets["boxes"], np.float64)[:n], _np(dets[score_key], np.float64)[:n],
                 _np(dets["classes"], np.float64)[:n])]
    boxes, scores, classes = _rows(dets["boxes"]), _rows(dets[score_key]), _rows(dets["classes"])
    if not len(boxes) == len(scores) == len(classes):
        raise ValueError(f"detections dict: {len(boxes)} box rows, {len(scores)} score rows, {len(classes)} class rows")
    counts = dets.get("num_detections")
    counts = [None] * len(boxes) if counts is None else [int(n) for n in _np(counts, np.int64).reshape(-1)]
    if len(counts) != len(boxes):
        raise ValueError(f"detections dict: {len(counts)} num_detections for {len(boxes)} images")
    return [(b[:n], s[:n], c[:n]) for b, s, c, n in zip(boxes, scores, classes, counts)]


def _batch_ground_truths(gts: Mapping) -> list[tuple[np.ndarray, np.ndarray]]:
    """keras-cv's {"boxes" (B, G, 4), "classes" (B, G)} (class -1 = padding) -> per image."""
    if _unbatched(gts["classes"]):
        return [(gts["boxes"], gts["classes"])]
    boxes, classes = _rows(gts["boxes"]), _rows(gts["classes"])
    if len(boxes) != len(classes):
        raise ValueError(f"ground-truth dict: {len(boxes)} box rows and {len(classes)} class rows")
    return list(zip(boxes, classes))


def _images(detections, ground_truths) -> tuple[list, list]:
    """Either form of the inputs (module doc) -> per-image lists."""
    dets = _batch_detections(detections) if isinstance(detections, Mapping) else list(detections)
    gts = _batch_ground_truths(ground_truths) if isinstance(ground_truths, Mapping) else list(ground_truths)
    return dets, gts


def _parse_detections(det: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(det, Mapping):
        det = (det["boxes"], det["scores"], det["classes"])
    boxes, scores, classes = det
    boxes = _np(boxes, np.float64).reshape(-1, 4)
    scores = _np(scores, np.float64).reshape(-1)
    classes = _np(classes, np.float64).reshape(-1)
    if not len(boxes) == len(scores) == len(classes):
        raise ValueError(f"detections: {len(boxes)} boxes, {len(scores)} scores and {len(classes)} classes differ")
    keep = classes >= 0  # -1 marks padding / background rows
    return boxes[keep], scores[keep], classes[keep].astype(np.int64)


def _parse_ground_truth(gt: GroundTruth) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(gt, Mapping):
        gt = (gt["boxes"], gt["classes"])
    boxes, classes = gt
    boxes = _np(boxes, np.float64).reshape(-1, 4)
    classes = _np(classes, np.float64).reshape(-1)
    if len(boxes) != len(classes):
        raise ValueError(f"ground truth: {len(boxes)} boxes and {len(classes)} classes differ")
    keep = classes >= 0
    return boxes[keep], classes[keep].astype(np.int64)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) xyxy -> (N, M); a zero union gives 0."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _match(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(D, G) IoUs of score-sorted detections -> (T, D) bool true-positive flags (pycocotools' rule)."""
    num_det, num_gt = ious.shape
    tp = np.zeros((len(thresholds), num_det), bool)
    for ti, t in enumerate(thresholds):
        taken = np.zeros(num_gt, bool)
        for d in range(num_det):
            best, match = min(t, 1 - 1e-10), -1
            for g in range(num_gt):
                if taken[g] or ious[d, g] < best:
                    continue
                best, match = ious[d, g], g
            if match >= 0:
                taken[match] = True
                tp[ti, d] = True
    return tp


def _interpolated_ap(tp: np.ndarray, num_gt: int) -> float:
    """Score-ranked TP flags (D,) and the ground-truth count -> 101-point interpolated AP."""
    if len(tp) == 0:
        return 0.0
    tp_sum = np.cumsum(tp).astype(np.float64)
    fp_sum = np.cumsum(~tp).astype(np.float64)
    recall = tp_sum / num_gt
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_LEVELS, side="left")
    values = np.zeros(len(RECALL_LEVELS))
    reached = idx < len(envelope)  # recall levels beyond the final recall score 0
    values[reached] = envelope[idx[reached]]
    return float(np.mean(values))


def _tables(detections, ground_truths, num_classes, iou_thresholds, max_detections
            ) -> tuple[np.ndarray, np.ndarray, int]:
    """-> AP (T, K), final recall (T, K) (both NaN for classes without ground truth), image count."""
    detections, ground_truths = _images(detections, ground_truths)
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection lists for {len(ground_truths)} images")
    dets = [_parse_detections(d) for d in detections]
    gts = [_parse_ground_truth(g) for g in ground_truths]
    if num_classes is None:
        seen = [c for _, _, c in dets] + [c for _, c in gts]
        num_classes = int(max((c.max() for c in seen if len(c)), default=-1)) + 1
    thresholds = np.asarray(iou_thresholds, np.float64).reshape(-1)
    table = np.full((len(thresholds), num_classes), np.nan)
    recall = np.full((len(thresholds), num_classes), np.nan)
    for k in range(num_classes):
        num_gt = 0
        scores, flags = [], []
        for (d_boxes, d_scores, d_classes), (g_boxes, g_classes) in zip(dets, gts):
            g = g_boxes[g_classes == k]
            num_gt += len(g)
            sel = d_classes == k
            order = np.argsort(-d_scores[sel], kind="mergesort")[:max_detections]
            boxes, s = d_boxes[sel][order], d_scores[sel][order]
            scores.append(s)
            flags.append(_match(_iou(boxes, g), thresholds))
        if num_gt == 0:
            continue
        scores_all = np.concatenate(scores)
        flags_all = np.concatenate(flags, axis=1)  # (T, D)
        rank = np.argsort(-scores_all, kind="mergesort")
        for ti in range(len(thresholds)):
            table[ti, k] = _interpolated_ap(flags_all[ti, rank], num_gt)
            recall[ti, k] = float(flags_all[ti].sum()) / num_gt
    return table, recall, len(gts)


def average_precision_table(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
                            num_classes: int | None = None, iou_thresholds: Sequence[float] = (0.5,),
                            max_detections: int = 100) -> np.ndarray:
    """AP per (threshold, class): (T, num_classes) float64, NaN for classes without ground truth.

    detections[i] / ground_truths[i] belong to image i, or either is one batch dict (see the
    module doc for the formats); rows with class < 0 are ignored. `num_classes` defaults to
    1 + the largest class seen.
    """
    return _tables(detections, ground_truths, num_classes, iou_thresholds, max_detections)[0]


def _mean(values: np.ndarray) -> float:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def average_recall(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
                   iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS, num_classes: int | None = None,
                   max_detections: int = 100) -> float:
    """COCO's AR@max_detections (keras-cv's "Recall@[max_detections=100]"): the fraction of ground
    truth matched by the best `max_detections` detections per image and class, averaged over
    classes with ground truth and the thresholds (default 0.50:0.05:0.95); NaN without ground truth."""
    return _mean(_tables(detections, ground_truths, num_classes, iou_thresholds, max_detections)[1])


def mean_average_precision(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
                           iou_thresholds: Sequence[float] = (0.5,), num_classes: int | None = None,
                           max_detections: int = 100) -> float:
    """Mean of the AP table over thresholds and classes with ground truth (NaN if there is none).

    iou_thresholds=(0.5,) gives mAP@0.5 (VOC-style threshold, COCO 101-point interpolation);
    COCO_IOU_THRESHOLDS gives COCO's mAP@[.5:.95].
    """
    return _mean(average_precision_table(detections, ground_truths, num_classes, iou_thresholds, max_detections))


def coco_map(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
             num_classes: int | None = None, max_detections: int = 100) -> float:
    """COCO's mAP@[.5:.95]: the mean over the ten thresholds 0.50, 0.55, ..., 0.95."""
    return mean_average_precision(detections, ground_truths, COCO_IOU_THRESHOLDS, num_classes, max_detections)


def detection_metrics(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
                      num_classes: int | None = None, max_detections: int = 100) -> dict[str, Any]:
    """The Evaluator's numbers: map_50, map_75, map (COCO @[.5:.95]) and AP@0.5 per class.

    Inputs: per-image sequences or batch dicts (keras-cv's or kcv's), as the module doc says.
    """
    detections, ground_truths = _images(detections, ground_truths)
    table = average_precision_table(detections, ground_truths, num_classes, COCO_IOU_THRESHOLDS, max_detections)
    return {
        "map_50": _mean(table[0]),
        "map_75": _mean(table[5]),
        "map": _mean(table),
        "ap_50_per_class": [None if np.isnan(v) else float(v) for v in table[0]],
        "num_images": len(ground_truths),
        "num_ground_truths": int(sum(len(_parse_ground_truth(g)[1]) for g in ground_truths)),
        "num_detections": int(sum(len(_parse_detections(d)[2]) for d in detections)),
    }


# ---- converters from kcv's tensor formats ----------------------------------------------------
def from_padded(boxes, scores, classes, num_detections=None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Padded batch (B, D, 4), (B, D), (B, D) [+ (B,) counts] -> per-image (boxes, scores, classes).

    The format of `TinySSD.detect` and the exported detector; padding rows have class -1.
    """
    boxes, scores, classes = _np(boxes, np.float64), _np(scores, np.float64), _np(classes, np.float64)
    counts = [boxes.shape[1]] * len(boxes) if num_detections is None else _np(num_detections, np.int64)
    return [(boxes[i, :n], scores[i, :n], classes[i, :n]) for i, n in enumerate(counts)]


def from_labels(labels) -> list[tuple[np.ndarray, np.ndarray]]:
    """Training labels (B, G, 5) rows [class, x1, y1, x2, y2] (class -1 = padding) -> per-image (boxes, classes)."""
    labels = _np(labels, np.float64)
    return [(row[:, 1:], row[:, 0]) for row in labels]


def from_book_rows(rows) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`multibox_detection` output (B, A, 6) [class or -1, conf, x1, y1, x2, y2] -> per-image detections."""
    rows = _np(rows, np.float64)
    return [(r[:, 2:], r[:, 1], r[:, 0]) for r in rows]
