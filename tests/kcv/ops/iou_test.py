import numpy as np

from kcv.ops import box_iou


def test_hand_values():
    a = np.array([[0.0, 0.0, 2.0, 2.0]], np.float32)
    b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 2.0], [5, 5, 6, 6]], np.float32)
    # inter 1, union 4 + 4 - 1 = 7; identical -> 1; contained half -> 2/4; disjoint -> 0
    np.testing.assert_allclose(box_iou(a, b).numpy(), [[1 / 7, 1.0, 0.5, 0.0]], rtol=1e-7)


def test_edge_sharing_boxes_have_iou_zero():
    a = np.array([[0.0, 0.0, 1.0, 1.0]], np.float32)
    b = np.array([[1.0, 0.0, 2.0, 1.0], [1.0, 1.0, 2.0, 2.0]], np.float32)  # shared edge, shared corner
    np.testing.assert_array_equal(box_iou(a, b).numpy(), [[0.0, 0.0]])


def test_zero_area_pair_is_nan_like_the_book():
    p = np.array([[0.5, 0.5, 0.5, 0.5]], np.float32)
    assert np.isnan(box_iou(p, p).numpy()[0, 0])  # 0 / (0 + 0 - 0)


def test_batched_broadcast_shape():
    a = np.zeros((1, 5, 4), np.float32) + [0, 0, 1, 1]
    b = np.zeros((3, 2, 4), np.float32) + [0, 0, 1, 1]
    out = box_iou(a, b).numpy()
    assert out.shape == (3, 5, 2) and (out == 1).all()
