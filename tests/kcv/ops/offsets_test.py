import numpy as np

from kcv.ops import offset_boxes, offset_inverse


def test_hand_values():
    anchors = np.array([[0.0, 0.0, 1.0, 2.0]], np.float32)  # centre (0.5, 1), w 1, h 2
    boxes = np.array([[0.1, 0.2, 1.1, 2.2]], np.float32)  # centre (0.6, 1.2), w 1, h 2
    # (10*0.1/1, 10*0.2/2, 5*log(1e-6 + 1), 5*log(1e-6 + 1)) = (1, 1, 5e-6, 5e-6)
    np.testing.assert_allclose(offset_boxes(anchors, boxes).numpy(), [[1.0, 1.0, 5e-6, 5e-6]], rtol=1e-4, atol=1e-6)


def test_round_trip_up_to_eps():
    rng = np.random.default_rng(0)
    lo = rng.uniform(0, 0.5, (50, 2))
    anchors = np.concatenate([lo, lo + rng.uniform(0.1, 0.5, (50, 2))], 1).astype(np.float32)
    lo = rng.uniform(0, 0.5, (50, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(0.1, 0.5, (50, 2))], 1).astype(np.float32)
    back = offset_inverse(anchors, offset_boxes(anchors, boxes)).numpy()
    # The eps inside the log makes the width (wb/wa + 1e-6) * wa: off by at most 1e-6 * 0.5.
    np.testing.assert_allclose(back, boxes, atol=2e-6)


def test_zero_offsets_give_the_anchor_and_batch_broadcast():
    anchors = np.array([[[0.1, 0.2, 0.5, 0.9]]], np.float32)  # (1, 1, 4)
    out = offset_inverse(anchors, np.zeros((3, 1, 4), np.float32)).numpy()  # exp(0) = 1
    assert out.shape == (3, 1, 4)
    np.testing.assert_allclose(out, np.broadcast_to(anchors, (3, 1, 4)), atol=1e-7)
