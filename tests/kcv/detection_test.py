"""The book's printed examples (d2l-en anchor.md / bounding-box.md, PyTorch tab) via kcv.detection."""
import numpy as np
import tensorflow as tf

from kcv import detection as d2l

F = np.float32
GROUND_TRUTH = np.array([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]], F)  # dog, cat
ANCHORS = np.array(
    [[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98], [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]], F
)


def test_catdog_anchors():
    h, w = 561, 728  # the book prints `561 728`
    Y = d2l.multibox_prior(tf.zeros((1, h, w, 3)), sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5])
    assert Y.shape == (1, 2042040, 4)
    boxes = tf.reshape(Y, (h, w, 5, 4))
    np.testing.assert_allclose(boxes[250, 250, 0, :].numpy(), [0.05511677, 0.07152405, 0.63307005, 0.82152402], atol=1e-7)


def test_bounding_box_round_trip():
    boxes = tf.constant([[60.0, 45.0, 378.0, 516.0], [400.0, 112.0, 655.0, 493.0]])
    assert bool(tf.reduce_all(d2l.box_center_to_corner(d2l.box_corner_to_center(boxes)) == boxes))


def test_labelling_example():
    labels = d2l.multibox_target(ANCHORS[None], GROUND_TRUTH[None])
    np.testing.assert_array_equal(labels[2].numpy(), [[0, 1, 2, 0, 2]])
    np.testing.assert_array_equal(labels[1].numpy(), [[0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]])
    printed = [0, 0, 0, 0, 1.40, 10.0, 2.59, 7.18, -1.20, 0.269, 1.68, -1.57, 0, 0, 0, 0, -0.571, -1.00, 4.17e-06, 0.626]
    np.testing.assert_allclose(labels[0].numpy()[0], printed, rtol=5e-3, atol=1e-8)
    assert abs(labels[0].numpy()[0, 18] - 4.17e-06) < 5e-9  # depends on eps inside the log and float32
    assert np.signbit(labels[0].numpy()[0, :4]).all()  # the book prints -0 for background


def test_assign_anchor_to_bbox_example():
    np.testing.assert_array_equal(d2l.assign_anchor_to_bbox(GROUND_TRUTH[:, 1:], ANCHORS).numpy(), [-1, 0, 1, -1, 1])
    np.testing.assert_array_equal(d2l.assign_anchor_to_bbox(np.zeros((0, 4), F), ANCHORS).numpy(), [-1] * 5)


def test_detection_example():
    anchors = np.array([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95], [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]], F)
    offset_preds = np.zeros(16, F)
    cls_probs = np.array([[0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]], F)  # background, dog, cat
    output = d2l.multibox_detection(cls_probs[None], offset_preds[None], anchors[None], nms_threshold=0.5)
    printed = [
        [0, 0.9, 0.10, 0.08, 0.52, 0.92],
        [1, 0.9, 0.55, 0.20, 0.90, 0.88],
        [-1, 0.8, 0.08, 0.20, 0.56, 0.95],
        [-1, 0.7, 0.15, 0.30, 0.62, 0.91],
    ]
    np.testing.assert_allclose(output.numpy()[0], printed, atol=1e-6)
    # The book's nms on the dog-class scores alone: anchor0, then anchor3 (the others overlap anchor0).
    np.testing.assert_array_equal(d2l.nms(anchors, cls_probs[1], 0.5).numpy(), [0, 3])


def test_float64_and_list_inputs_compute_in_float32():
    got = d2l.multibox_target(ANCHORS[None].astype(np.float64), GROUND_TRUTH[None].astype(np.float64).tolist())
    want = d2l.multibox_target(ANCHORS[None], GROUND_TRUTH[None])
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    assert d2l.nms(ANCHORS.astype(np.float64), [0.1, 0.2, 0.3, 0.4, 0.5], 0.5).dtype == tf.int32


def test_box_iou_and_offsets_exposed():
    np.testing.assert_allclose(d2l.box_iou(ANCHORS[:1], ANCHORS[:1]).numpy(), [[1.0]])
    off = d2l.offset_boxes(ANCHORS, ANCHORS)
    np.testing.assert_allclose(d2l.offset_inverse(ANCHORS, off).numpy(), ANCHORS, atol=1e-6)


def test_detection_modules_import_neither_absl_nor_pipelines():
    # (TensorFlow itself imports absl.flags, so a sys.modules check cannot tell; read the source.)
    import pathlib

    import kcv

    root = pathlib.Path(kcv.__file__).parent
    for path in [root / "detection.py", *sorted((root / "ops").glob("*.py"))]:
        imports = [line for line in path.read_text().splitlines() if line.lstrip().startswith(("import ", "from "))]
        assert not [line for line in imports if "absl" in line or "pipelines" in line], path
