import numpy as np
import tensorflow as tf

from kcv.ops import detections_padded, multibox_detection

F = np.float32


def random_case(seed, batch=3, classes=4, num_anchors=30):
    rng = np.random.default_rng(seed)
    lo = rng.uniform(0, 0.7, (num_anchors, 2))
    anchors = np.concatenate([lo, lo + rng.uniform(0.05, 0.3, (num_anchors, 2))], 1).astype(F)[None]
    logits = rng.normal(scale=3, size=(batch, classes + 1, num_anchors))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(F)
    offsets = rng.normal(scale=0.3, size=(batch, 4 * num_anchors)).astype(F)
    return probs, offsets, anchors


def test_pos_threshold_rows():
    anchors = np.array([[[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]]], F)  # disjoint: all kept
    probs = np.array([[[0.5, 0.99, 0.9], [0.2, 0.01, 0.005], [0.3, 0.0, 0.095]]], F)
    out = multibox_detection(probs, np.zeros((1, 12), F), anchors).numpy()[0]
    # conf = max over rows 1..2: anchor0 0.3 (class 1), anchor1 0.01 (class 0), anchor2 0.095
    # (class 1); all kept, so rows in conf order: anchor0, anchor2, anchor1
    np.testing.assert_array_equal(out[:, 0], [1, 1, 0])  # float32(0.01) is not < 0.009999999
    np.testing.assert_allclose(out[:, 1], [0.3, 0.095, 0.01], rtol=1e-6)
    probs[0, 1, 1] = 0.005  # conf 0.005 < threshold: class -1, conf 1 - 0.005
    out = multibox_detection(probs, np.zeros((1, 12), F), anchors).numpy()[0]
    np.testing.assert_array_equal(out[:, 0], [1, 1, -1])
    np.testing.assert_allclose(out[2, 1], 0.995, rtol=1e-6)


def test_non_kept_rows_follow_in_index_order_with_their_conf():
    anchors = np.array([[[0, 0, 1, 1]] * 3 + [[2, 2, 3, 3]]], F)
    probs = np.array([[[0, 0, 0, 0], [0.2, 0.9, 0.5, 0.1]]], F)
    out = multibox_detection(probs, np.zeros((1, 16), F), anchors).numpy()[0]
    # kept: anchor1 (0.9), anchor3 (0.1); then non-kept anchor0 (0.2), anchor2 (0.5) by index
    np.testing.assert_array_equal(out[:, 0], [0, 0, -1, -1])
    np.testing.assert_allclose(out[:, 1], [0.9, 0.1, 0.2, 0.5], rtol=1e-6)


def test_padded_detections_are_the_detection_prefix():
    probs, offsets, anchors = random_case(0)
    table = multibox_detection(probs, offsets, anchors, nms_threshold=0.4).numpy()
    for k in (1, 5, 40, 100):  # 100 > 30 anchors: the prefix is everything
        det = detections_padded(probs, offsets, anchors, nms_threshold=0.4, max_detections=k)
        for i in range(len(probs)):
            rows = table[i][table[i][:, 0] >= 0][:k]
            n = int(det["num_detections"][i])
            assert n == len(rows)
            np.testing.assert_array_equal(det["classes"][i, :n].numpy(), rows[:, 0])
            np.testing.assert_array_equal(det["scores"][i, :n].numpy(), rows[:, 1])
            np.testing.assert_array_equal(det["boxes"][i, :n].numpy(), rows[:, 2:])
            assert (det["classes"][i, n:].numpy() == -1).all() and (det["scores"][i, n:].numpy() == 0).all()


def test_padded_detections_fall_back_when_the_prefix_keeps_too_few():
    # 300 anchors: 280 copies of one box with the best scores, then 20 separate boxes. The
    # 256-anchor prefix keeps 1 box < 5, so the image must be redone on all anchors.
    rng = np.random.default_rng(5)
    same = np.tile(np.array([[0.1, 0.1, 0.3, 0.3]], F), (280, 1))
    other = np.array([[0.5 + (i % 5) * 0.1, (i // 5) * 0.2, 0.55 + (i % 5) * 0.1, (i // 5) * 0.2 + 0.1] for i in range(20)], F)
    anchors = np.concatenate([same, other])[None]
    probs = np.zeros((2, 3, 300), F)
    probs[:, 1, :280] = 0.9
    probs[:, 2, 280:] = rng.uniform(0.05, 0.5, (2, 20))
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    offsets = np.zeros((2, 1200), F)
    table = multibox_detection(probs, offsets, anchors).numpy()
    det = detections_padded(probs, offsets, anchors, max_detections=5)
    for i in range(2):
        rows = table[i][table[i][:, 0] >= 0][:5]
        assert int(det["num_detections"][i]) == 5
        np.testing.assert_array_equal(det["classes"][i].numpy(), rows[:, 0])  # [0, 1, 1, 1, 1]
        np.testing.assert_array_equal(det["boxes"][i].numpy(), rows[:, 2:])
        np.testing.assert_array_equal(det["scores"][i].numpy(), rows[:, 1])


def test_static_and_dynamic_batch_agree_and_export(tmp_path):
    probs, offsets, anchors = random_case(1)
    want = multibox_detection(probs, offsets, anchors).numpy()  # static batch: unrolled

    class Detector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None]), tf.TensorSpec([None, None]), tf.TensorSpec([1, None, 4])])
        def table(self, p, o, a):
            return multibox_detection(p, o, a)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None]), tf.TensorSpec([None, None]), tf.TensorSpec([1, None, 4])])
        def padded(self, p, o, a):
            return detections_padded(p, o, a, max_detections=7)

    tf.saved_model.save(Detector(), str(tmp_path / "det"))
    loaded = tf.saved_model.load(str(tmp_path / "det"))
    # Bit-identical: offset_inverse keeps its divisions out of Grappler's x/c -> x*(1/c) rewrite.
    np.testing.assert_array_equal(loaded.table(probs, offsets, anchors).numpy(), want)
    got = loaded.padded(probs, offsets, anchors)
    ref = detections_padded(probs, offsets, anchors, max_detections=7)
    for key in ref:
        np.testing.assert_array_equal(got[key].numpy(), ref[key].numpy())
    assert loaded.table(probs[:0], offsets[:0], anchors).shape == (0, 30, 6)
