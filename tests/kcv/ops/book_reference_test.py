"""kcv.ops against a literal NumPy port of the book's PyTorch code (d2l-en anchor.md), float32.

The reference below mirrors the book line by line (torch -> numpy), including its float32
operation order, its first-index argmax/max and its float32 division for the anchor row, so ties
and thresholds are decided on bit-identical IoUs. PyTorch itself is not installed here.
Random inputs sit on a 1/8 grid with few distinct scores, so equal IoUs, IoU == threshold and
equal scores happen often.
"""
import numpy as np
import pytest
import tensorflow as tf

from kcv import ops

F = np.float32


# ---------------------------------------------------------------- the book, in NumPy (reference)
def ref_multibox_prior(in_height, in_width, sizes, ratios):
    num_sizes, num_ratios = len(sizes), len(ratios)
    boxes_per_pixel = num_sizes + num_ratios - 1
    size_tensor, ratio_tensor = np.array(sizes, F), np.array(ratios, F)
    steps_h, steps_w = F(1.0 / in_height), F(1.0 / in_width)
    center_h = (np.arange(in_height).astype(F) + F(0.5)) * steps_h
    center_w = (np.arange(in_width).astype(F) + F(0.5)) * steps_w
    shift_y, shift_x = np.meshgrid(center_h, center_w, indexing="ij")
    shift_y, shift_x = shift_y.reshape(-1), shift_x.reshape(-1)
    w = np.concatenate((size_tensor * np.sqrt(ratio_tensor[0]), F(sizes[0]) * np.sqrt(ratio_tensor[1:])))
    w = w * F(in_height) / F(in_width)
    h = np.concatenate((size_tensor / np.sqrt(ratio_tensor[0]), F(sizes[0]) / np.sqrt(ratio_tensor[1:])))
    anchor_manipulations = np.tile(np.stack((-w, -h, w, h)).T, (in_height * in_width, 1)) / F(2)
    out_grid = np.repeat(np.stack([shift_x, shift_y, shift_x, shift_y], axis=1), boxes_per_pixel, axis=0)
    return (out_grid + anchor_manipulations)[None]


def ref_box_iou(boxes1, boxes2):
    def box_area(b):
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    areas1, areas2 = box_area(boxes1), box_area(boxes2)
    inter_upperlefts = np.maximum(boxes1[:, None, :2], boxes2[:, :2])
    inter_lowerrights = np.minimum(boxes1[:, None, 2:], boxes2[:, 2:])
    inters = np.maximum(inter_lowerrights - inter_upperlefts, F(0))
    inter_areas = inters[:, :, 0] * inters[:, :, 1]
    union_areas = areas1[:, None] + areas2 - inter_areas
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter_areas / union_areas


def ref_assign_anchor_to_bbox(ground_truth, anchors, iou_threshold=0.5):
    num_anchors, num_gt_boxes = anchors.shape[0], ground_truth.shape[0]
    jaccard = ref_box_iou(anchors, ground_truth)
    anchors_bbox_map = np.full((num_anchors,), -1, dtype=np.int64)
    max_ious, indices = jaccard.max(axis=1), jaccard.argmax(axis=1)
    anc_i = np.nonzero(max_ious >= iou_threshold)[0]
    box_j = indices[max_ious >= iou_threshold]
    anchors_bbox_map[anc_i] = box_j
    for _ in range(num_gt_boxes):
        max_idx = np.argmax(jaccard)
        box_idx = max_idx % num_gt_boxes
        anc_idx = int(F(max_idx) / F(num_gt_boxes))  # the book divides in float32
        anchors_bbox_map[anc_idx] = box_idx
        jaccard[:, box_idx] = -1
        jaccard[anc_idx, :] = -1
    return anchors_bbox_map


def ref_box_corner_to_center(boxes):
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return np.stack(((x1 + x2) / F(2), (y1 + y2) / F(2), x2 - x1, y2 - y1), axis=-1)


def ref_box_center_to_corner(boxes):
    cx, cy, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    half = F(0.5)
    return np.stack((cx - half * w, cy - half * h, cx + half * w, cy + half * h), axis=-1)


def ref_offset_boxes(anchors, assigned_bb, eps=1e-6):
    c_anc, c_bb = ref_box_corner_to_center(anchors), ref_box_corner_to_center(assigned_bb)
    offset_xy = F(10) * (c_bb[:, :2] - c_anc[:, :2]) / c_anc[:, 2:]
    offset_wh = F(5) * np.log(F(eps) + c_bb[:, 2:] / c_anc[:, 2:])
    return np.concatenate([offset_xy, offset_wh], axis=1)


def ref_multibox_target(anchors, labels):
    batch_size, anchors = labels.shape[0], anchors[0]
    num_anchors = anchors.shape[0]
    out = ([], [], [])
    for i in range(batch_size):
        label = labels[i]
        anchors_bbox_map = ref_assign_anchor_to_bbox(label[:, 1:], anchors)
        bbox_mask = np.repeat((anchors_bbox_map >= 0).astype(F)[:, None], 4, axis=1)
        class_labels = np.zeros(num_anchors, dtype=np.int64)
        assigned_bb = np.zeros((num_anchors, 4), dtype=F)
        indices_true = np.nonzero(anchors_bbox_map >= 0)[0]
        bb_idx = anchors_bbox_map[indices_true]
        class_labels[indices_true] = label[bb_idx, 0].astype(np.int64) + 1
        assigned_bb[indices_true] = label[bb_idx, 1:]
        with np.errstate(divide="ignore"):
            offset = ref_offset_boxes(anchors, assigned_bb) * bbox_mask
        out[0].append(offset.reshape(-1))
        out[1].append(bbox_mask.reshape(-1))
        out[2].append(class_labels)
    return tuple(np.stack(o) for o in out)


def ref_offset_inverse(anchors, offset_preds):
    anc = ref_box_corner_to_center(anchors)
    pred_bbox_xy = (offset_preds[:, :2] * anc[:, 2:] / F(10)) + anc[:, :2]
    pred_bbox_wh = np.exp(offset_preds[:, 2:] / F(5)) * anc[:, 2:]
    return ref_box_center_to_corner(np.concatenate((pred_bbox_xy, pred_bbox_wh), axis=1))


def ref_nms(boxes, scores, iou_threshold):
    order = np.argsort(-scores, kind="stable")  # descending, lower index first on ties
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        iou = ref_box_iou(boxes[i, :].reshape(-1, 4), boxes[order[1:], :].reshape(-1, 4)).reshape(-1)
        inds = np.nonzero(iou <= iou_threshold)[0]
        order = order[inds + 1]
    return np.array(keep, dtype=np.int64)


def ref_multibox_detection(cls_probs, offset_preds, anchors, nms_threshold=0.5, pos_threshold=0.009999999):
    batch_size, anchors = cls_probs.shape[0], anchors[0]
    num_anchors = cls_probs.shape[2]
    out = []
    for i in range(batch_size):
        cls_prob, offset_pred = cls_probs[i], offset_preds[i].reshape(-1, 4)
        conf, class_id = cls_prob[1:].max(axis=0), cls_prob[1:].argmax(axis=0).astype(np.int64)
        predicted_bb = ref_offset_inverse(anchors, offset_pred)
        keep = ref_nms(predicted_bb, conf, nms_threshold)
        all_idx = np.arange(num_anchors, dtype=np.int64)
        uniques, counts = np.unique(np.concatenate((keep, all_idx)), return_counts=True)
        non_keep = uniques[counts == 1]
        all_id_sorted = np.concatenate((keep, non_keep))
        class_id[non_keep] = -1
        class_id = class_id[all_id_sorted]
        conf, predicted_bb = conf[all_id_sorted], predicted_bb[all_id_sorted]
        below_min_idx = conf < F(pos_threshold)  # torch compares a float32 tensor in float32
        class_id[below_min_idx] = -1
        conf[below_min_idx] = F(1) - conf[below_min_idx]
        out.append(np.concatenate((class_id[:, None].astype(F), conf[:, None], predicted_bb), axis=1))
    return np.stack(out)


# ---------------------------------------------------------------------------- random inputs
def grid_boxes(rng, n, step=8, allow_degenerate=False):
    """(n, 4) xyxy on a 1/step grid inside [0, 1]; many equal and edge-sharing boxes."""
    a = rng.integers(0, step + 1, size=(n, 2, 2))
    lo, hi = a.min(axis=1), a.max(axis=1)
    if not allow_degenerate:
        hi = np.maximum(hi, lo + 1)
    return (np.concatenate([lo, hi], axis=1) / step).astype(F)


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_box_iou_matches_book_bitwise(seed):
    rng = np.random.default_rng(seed)
    b1, b2 = grid_boxes(rng, 7), grid_boxes(rng, 5)
    np.testing.assert_array_equal(ops.box_iou(b1, b2).numpy(), ref_box_iou(b1, b2))


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (7, 4)])
def test_multibox_prior_matches_book_bitwise(size):
    sizes, ratios = [0.75, 0.5, 0.25], [1, 2, 0.5]
    got = ops.multibox_prior(np.zeros((1, *size, 3), F), sizes, ratios).numpy()
    np.testing.assert_array_equal(got, ref_multibox_prior(*size, sizes, ratios))


@pytest.mark.parametrize("seed", SEEDS)
def test_assignment_matches_book(seed):
    rng = np.random.default_rng(seed)
    num_anchors = int(rng.integers(1, 9))
    num_gt = int(rng.integers(1, 6))  # sometimes more gt boxes than anchors (book quirk)
    anchors = grid_boxes(rng, num_anchors, step=4)
    anchors = anchors[rng.integers(0, num_anchors, num_anchors)]  # duplicate anchors: ties
    gt = grid_boxes(rng, num_gt, step=4)
    gt = gt[rng.integers(0, num_gt, num_gt)]  # duplicate gt boxes: ties in step (a)
    got = ops.assign_anchors(anchors, gt[None], None, 0.5).numpy()[0]
    np.testing.assert_array_equal(got, ref_assign_anchor_to_bbox(gt, anchors))


@pytest.mark.parametrize("seed", SEEDS)
def test_multibox_target_matches_book_on_valid_rows(seed):
    """Padded rows (class -1) are skipped: each image must equal the book on its valid rows."""
    rng = np.random.default_rng(seed)
    batch, num_gt, num_anchors = 3, 4, 10
    anchors = grid_boxes(rng, num_anchors, step=4)[None]
    labels = np.concatenate(
        [rng.integers(0, 3, (batch, num_gt, 1)).astype(F), np.stack([grid_boxes(rng, num_gt, 4) for _ in range(batch)])],
        axis=2,
    )
    labels[:, 1, 1:] = labels[:, 2, 1:]  # duplicate gt boxes: ties between gt columns
    labels[rng.random((batch, num_gt)) < 0.35, 0] = -1  # padding anywhere, some images all padded
    labels[0, :, 0] = -1  # image 0 has no ground truth at all
    offset, mask, cls = ops.multibox_target(anchors, labels)
    for i in range(batch):
        valid = labels[i][labels[i, :, 0] >= 0]
        if len(valid) == 0:
            np.testing.assert_array_equal(cls[i].numpy(), np.zeros(num_anchors))
            np.testing.assert_array_equal(mask[i].numpy(), np.zeros(4 * num_anchors))
            np.testing.assert_array_equal(offset[i].numpy(), np.zeros(4 * num_anchors))
            continue
        r_off, r_mask, r_cls = ref_multibox_target(anchors, valid[None])
        np.testing.assert_array_equal(cls[i].numpy(), r_cls[0])
        np.testing.assert_array_equal(mask[i].numpy(), r_mask[0])
        np.testing.assert_allclose(offset[i].numpy(), r_off[0], rtol=1e-5, atol=1e-5)
        # Background rows are +-0 like the book's offset * mask; the signs agree too.
        np.testing.assert_array_equal(np.signbit(offset[i].numpy()), np.signbit(r_off[0]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 1.0 / 3.0])
def test_nms_matches_book_with_ties(seed, threshold):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    boxes = grid_boxes(rng, n, step=4, allow_degenerate=seed % 3 == 0)  # zero-area boxes too
    scores = rng.integers(0, 4, n).astype(F) / 4  # few distinct scores -> ties
    if seed % 4 == 1:
        scores[rng.random(n) < 0.3] = -np.inf
    want = ref_nms(boxes, scores, threshold)
    np.testing.assert_array_equal(ops.nms(boxes, scores, threshold).numpy(), want)
    for k in (1, 3, n + 2):  # max_output_size: a prefix of the full answer
        np.testing.assert_array_equal(ops.nms(boxes, scores, threshold, max_output_size=k).numpy(), want[:k])


def test_nms_prefix_fallback_when_prefix_keeps_too_few():
    """300 copies of one box then 10 separate boxes: the 256-box prefix keeps 1 < 5, so the
    full path must run and still give the book's first 5."""
    rng = np.random.default_rng(0)
    same = np.tile(np.array([[0, 0, 0.5, 0.5]], F), (300, 1))
    other = np.stack([np.array([0.6, i / 10, 0.7, i / 10 + 0.05], F) for i in range(10)])
    boxes = np.concatenate([same, other])
    scores = np.concatenate([np.full(300, 0.9, F), rng.uniform(0, 0.5, 10).astype(F)])
    want = ref_nms(boxes, scores, 0.5)
    np.testing.assert_array_equal(ops.nms(boxes, scores, 0.5, max_output_size=5).numpy(), want[:5])


@pytest.mark.parametrize("seed", SEEDS)
def test_multibox_detection_matches_book_with_ties(seed):
    """Zero offsets keep predicted boxes exactly on the grid, so NMS ties are real ties."""
    rng = np.random.default_rng(seed)
    batch, num_classes, num_anchors = 2, 3, int(rng.integers(1, 25))
    anchors = grid_boxes(rng, num_anchors, step=4)[None]
    cls_probs = rng.integers(0, 5, (batch, num_classes + 1, num_anchors)).astype(F) / 8  # ties
    cls_probs[0, 1:, 0] = F(0.01)  # float32(0.01) is not below 0.009999999
    if num_anchors > 1:
        cls_probs[0, 1:, 1] = np.nextafter(F(0.009999999), F(0))  # just below: class -1
    if num_anchors > 2:
        cls_probs[1, 1:, 2] = F(0.009999999)  # exactly the threshold: not below, class kept
    offsets = np.zeros((batch, 4 * num_anchors), F)
    want = ref_multibox_detection(cls_probs, offsets, anchors)
    np.testing.assert_array_equal(ops.multibox_detection(cls_probs, offsets, anchors).numpy(), want)


@pytest.mark.parametrize("seed", range(4))
def test_multibox_detection_matches_book_random_offsets(seed):
    rng = np.random.default_rng(100 + seed)
    batch, num_classes, num_anchors = 3, 4, 40
    anchors = ops.multibox_prior(np.zeros((1, 4, 2, 1), F), [0.6, 0.3], [1, 2, 0.5]).numpy()  # 4*2*4 = 32
    anchors = np.concatenate([anchors, grid_boxes(rng, num_anchors - 32)[None]], axis=1)
    logits = rng.normal(size=(batch, num_classes + 1, num_anchors)).astype(F)
    cls_probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(F)
    offsets = rng.normal(scale=0.5, size=(batch, 4 * num_anchors)).astype(F)
    want = ref_multibox_detection(cls_probs, offsets, anchors, nms_threshold=0.3)
    got = ops.multibox_detection(cls_probs, offsets, anchors, nms_threshold=0.3).numpy()
    np.testing.assert_array_equal(got[..., 0], want[..., 0])
    np.testing.assert_allclose(got[..., 1:], want[..., 1:], rtol=1e-5, atol=1e-6)


def test_offsets_match_book():
    rng = np.random.default_rng(7)
    anchors, boxes = grid_boxes(rng, 20), grid_boxes(rng, 20)
    off = ops.offset_boxes(anchors, boxes).numpy()
    np.testing.assert_allclose(off, ref_offset_boxes(anchors, boxes), rtol=1e-5, atol=1e-5)
    pred = rng.normal(size=(20, 4)).astype(F)
    np.testing.assert_allclose(
        ops.offset_inverse(anchors, pred).numpy(), ref_offset_inverse(anchors, pred), rtol=1e-5, atol=1e-6
    )


def test_everything_runs_inside_tf_function_with_unknown_shapes():
    rng = np.random.default_rng(3)
    anchors = grid_boxes(rng, 12, step=4)[None]
    labels = np.concatenate([np.array([[[1.0], [-1.0], [0.0]]], F), grid_boxes(rng, 3, 4)[None]], axis=2)
    target = tf.function(
        ops.multibox_target,
        input_signature=[tf.TensorSpec([1, None, 4]), tf.TensorSpec([None, None, 5])],
    )
    for got, want in zip(target(anchors, labels), ops.multibox_target(anchors, labels)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    cls_probs = rng.integers(0, 5, (2, 3, 12)).astype(F) / 8
    offsets = np.zeros((2, 48), F)
    detect = tf.function(
        ops.multibox_detection,
        input_signature=[tf.TensorSpec([None, None, None]), tf.TensorSpec([None, None]), tf.TensorSpec([1, None, 4])],
    )  # dynamic batch: the tf.map_fn path
    np.testing.assert_array_equal(detect(cls_probs, offsets, anchors).numpy(), ref_multibox_detection(cls_probs, offsets, anchors))
