"""Evaluation metrics: detection mean average precision (COCO-style) and generator checks."""
from kcv.metrics.detection import (  # noqa: F401
    COCO_IOU_THRESHOLDS,
    average_precision_table,
    average_recall,
    coco_map,
    detection_metrics,
    from_book_rows,
    from_labels,
    from_padded,
    mean_average_precision,
)
from kcv.metrics.generators import GENERATOR_THRESHOLDS, generator_report, moments_report  # noqa: F401
