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


def average_precision_table(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
                            num_classes: int | None = None, iou_thresholds: Sequence[float] = (0.5,),
                            max_detections: int = 100) -> np.ndarray:
    """AP per (threshold, class): (T, num_classes) float64, NaN for classes without ground truth.

    detections[i] / ground_truths[i] belong to image i (see the module doc for the formats);
    rows with class < 0 are ignored. `num_classes` defaults to 1 + the largest class seen.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection lists for {len(ground_truths)} images")
    dets = [_parse_detections(d) for d in detections]
    gts = [_parse_ground_truth(g) for g in ground_truths]
    if num_classes is None:
        seen = [c for _, _, c in dets] + [c for _, c in gts]
        num_classes = int(max((c.max() for c in seen if len(c)), default=-1)) + 1
    thresholds = np.asarray(iou_thresholds, np.float64).reshape(-1)
    table = np.full((len(thresholds), num_classes), np.nan)
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
    return table


def mean_average_precision(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
                           iou_thresholds: Sequence[float] = (0.5,), num_classes: int | None = None,
                           max_detections: int = 100) -> float:
    """Mean of the AP table over thresholds and classes with ground truth (NaN if there is none).

    iou_thresholds=(0.5,) gives mAP@0.5 (VOC-style threshold, COCO 101-point interpolation);
    COCO_IOU_THRESHOLDS gives COCO's mAP@[.5:.95].
    """
    table = average_precision_table(detections, ground_truths, num_classes, iou_thresholds, max_detections)
    valid = table[~np.isnan(table)]
    return float(valid.mean()) if valid.size else float("nan")


def coco_map(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
             num_classes: int | None = None, max_detections: int = 100) -> float:
    """COCO's mAP@[.5:.95]: the mean over the ten thresholds 0.50, 0.55, ..., 0.95."""
    return mean_average_precision(detections, ground_truths, COCO_IOU_THRESHOLDS, num_classes, max_detections)


def detection_metrics(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth],
                      num_classes: int | None = None, max_detections: int = 100) -> dict[str, Any]:
    """The Evaluator's numbers: map_50, map_75, map (COCO @[.5:.95]) and AP@0.5 per class."""
    table = average_precision_table(detections, ground_truths, num_classes, COCO_IOU_THRESHOLDS, max_detections)

    def mean(rows: np.ndarray) -> float:
        valid = rows[~np.isnan(rows)]
        return float(valid.mean()) if valid.size else float("nan")

    return {
        "map_50": mean(table[0]),
        "map_75": mean(table[5]),
        "map": mean(table),
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
