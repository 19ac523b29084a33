import numpy as np
import tensorflow as tf

from kcv.ops import nms

F = np.float32


def test_iou_equal_to_threshold_is_kept_and_above_is_dropped():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.5], [0, 0, 1, 0.51]], F)  # IoU with box0: 0.5, 0.51
    np.testing.assert_array_equal(nms(boxes, np.array([0.9, 0.8, 0.7], F), 0.5).numpy(), [0, 1])


def test_equal_scores_lower_index_first():
    boxes = np.array([[0, 0, 1, 1]] * 3 + [[2, 2, 3, 3]], F)
    np.testing.assert_array_equal(nms(boxes, np.array([0.5, 0.7, 0.7, 0.7], F), 0.5).numpy(), [1, 3])


def test_empty_single_and_max_output_size():
    assert nms(np.zeros((0, 4), F), np.zeros(0, F), 0.5).shape == (0,)
    np.testing.assert_array_equal(nms(np.array([[0, 0, 1, 1]], F), np.array([0.3], F), 0.5).numpy(), [0])
    boxes = np.array([[i, 0, i + 1, 1] for i in range(5)], F)  # disjoint: all kept
    scores = np.array([0.1, 0.5, 0.3, 0.4, 0.2], F)
    np.testing.assert_array_equal(nms(boxes, scores, 0.5).numpy(), [1, 3, 2, 4, 0])
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, max_output_size=2).numpy(), [1, 3])


def test_zero_area_boxes_and_minus_inf_scores_follow_the_book():
    boxes = np.array([[0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], [3, 3, 3, 4], [5, 5, 6, 6]], F)
    scores = np.array([0.9, 0.8, 0.7, -np.inf], F)
    # box1 (zero area) has IoU 0 with box0: kept. box2 (zero area) meets box1 with 0/0 = NaN,
    # which the book's `iou <= thr` rejects: dropped. box3 has score -inf: still processed, kept.
    np.testing.assert_array_equal(nms(boxes, scores, 0.5).numpy(), [0, 1, 3])


def test_inside_tf_function_with_dynamic_n():
    fn = tf.function(lambda b, s: nms(b, s, 0.5, max_output_size=2), input_signature=[tf.TensorSpec([None, 4]), tf.TensorSpec([None])])
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [2, 2, 3, 3]], F)
    np.testing.assert_array_equal(fn(boxes, np.array([0.9, 0.8, 0.7], F)).numpy(), [0, 2])
