"""kcv.ops: pure tensor functions for detection (boxes, IoU, anchors, matching, offsets, NMS).

The book-named API lives in `kcv.detection`; these are the building blocks it and serving
graphs use (batched variants included).
"""
from kcv.ops.anchors import anchor_shapes, anchors_for_size, multibox_prior
from kcv.ops.boxes import box_area, box_center_to_corner, box_corner_to_center
from kcv.ops.decode import BOOK_POS_THRESHOLD, detections_padded, multibox_detection
from kcv.ops.iou import box_iou
from kcv.ops.matching import assign_anchors, multibox_target
from kcv.ops.nms import nms
from kcv.ops.offsets import offset_boxes, offset_inverse

__all__ = [
    "BOOK_POS_THRESHOLD",
    "anchor_shapes",
    "anchors_for_size",
    "assign_anchors",
    "box_area",
    "box_center_to_corner",
    "box_corner_to_center",
    "box_iou",
    "detections_padded",
    "multibox_detection",
    "multibox_prior",
    "multibox_target",
    "nms",
    "offset_boxes",
    "offset_inverse",
]
