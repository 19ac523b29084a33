"""Evaluation pictures: a classifier's confusion matrix, a detector's precision-recall curves.

The precision-recall curves are the ones kcv.metrics.detection averages into AP (the same
pycocotools matching, the interpolated envelope read at its 101 recall levels), so the mean of a
curve's precision values is that class's AP.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kcv.metrics import detection as det  # one matching rule for AP and for these curves


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """True labels (n,), predicted classes (n,) -> counts (num_classes, num_classes) int64, rows = truth."""
    labels = np.asarray(labels, np.int64).reshape(-1)
    predictions = np.asarray(predictions, np.int64).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: {labels.size} labels and {predictions.size} predictions differ")
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def confusion_figure(matrix, class_names: Sequence[str], title: str | None = None) -> Figure:
    """Counts (K, K) as text over row-normalised colours (each true class's share of predictions)."""
    matrix = np.asarray(matrix, np.int64)
    k = len(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    side = min(16.0, 2.5 + 0.45 * k)  # cells stay readable up to ~30 classes; 120 breeds still fit
    fig = Figure(figsize=(side + 1.0, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(shown, ax=ax, fraction=0.046, label="share of the true class")
    ticks = np.arange(k)
    ax.set_xticks(ticks, labels=list(class_names), rotation=90 if k > 6 else 0, fontsize="small")
    ax.set_yticks(ticks, labels=list(class_names), fontsize="small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:  # counts only where they fit in a cell
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize="x-small" if k > 10 else "small",
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_title(title or f"confusion matrix ({int(matrix.sum())} images)", fontsize="medium")
    return fig


def precision_recall_curves(detections: Sequence[det.Detections], ground_truths: Sequence[det.GroundTruth],
                            num_classes: int, iou_threshold: float = 0.5,
                            max_detections: int = 100) -> dict[int, np.ndarray | None]:
    """Per class: (101,) interpolated precision at recall det.RECALL_LEVELS, None without ground truth.

    Inputs as kcv.metrics.detection.average_precision_table takes them; the mean of a curve is
    that table's AP at `iou_threshold`.
    """
    dets = [det._parse_detections(d) for d in detections]
    gts = [det._parse_ground_truth(g) for g in ground_truths]
    curves: dict[int, np.ndarray | None] = {}
    for k in range(num_classes):
        scores, flags, num_gt = [], [], 0
        for (d_boxes, d_scores, d_classes), (g_boxes, g_classes) in zip(dets, gts):
            g = g_boxes[g_classes == k]
            num_gt += len(g)
            sel = d_classes == k
            order = np.argsort(-d_scores[sel], kind="mergesort")[:max_detections]
            scores.append(d_scores[sel][order])
            flags.append(det._match(det._iou(d_boxes[sel][order], g), np.array([iou_threshold]))[0])
        if num_gt == 0:
            curves[k] = None
            continue
        tp = np.concatenate(flags)[np.argsort(-np.concatenate(scores), kind="mergesort")]
        curves[k] = _envelope_at_levels(tp, num_gt)
    return curves


def _envelope_at_levels(tp: np.ndarray, num_gt: int) -> np.ndarray:
    """Score-ranked TP flags (D,) -> (101,) precision envelope at the recall levels (0 past the last recall)."""
    values = np.zeros(len(det.RECALL_LEVELS))
    if len(tp) == 0:
        return values
    tp_sum = np.cumsum(tp).astype(np.float64)
    recall = tp_sum / num_gt
    precision = tp_sum / (np.arange(1, len(tp) + 1) + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, det.RECALL_LEVELS, side="left")
    reached = idx < len(envelope)
    values[reached] = envelope[idx[reached]]
    return values


def precision_recall_figure(curves: Mapping[str, Sequence[float] | None], iou_threshold: float = 0.5,
                            title: str | None = None) -> Figure:
    """Named (101,) precision curves against recall 0..1, each labelled with its AP (the curve's mean)."""
    fig = Figure(figsize=(4.5, 3.6), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, precision in curves.items():
        if precision is None:
            continue
        precision = np.asarray(precision, np.float64)
        ax.step(det.RECALL_LEVELS, precision, where="post", label=f"{name} (AP {precision.mean():.3f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    if any(c is not None for c in curves.values()):
        ax.legend(loc="lower left", fontsize="small")
    ax.set_title(title or f"precision-recall at IoU {iou_threshold:.2f}", fontsize="medium")
    return fig
