import numpy as np
import tensorflow as tf

from kcv.ops import assign_anchors, multibox_target

F = np.float32


def assign(gt, anchors, valid=None, threshold=0.5):
    gt = np.asarray(gt, F)[None]
    return assign_anchors(np.asarray(anchors, F), gt, None if valid is None else np.asarray(valid)[None], threshold)[0].numpy()


def test_first_argmax_takes_the_first_of_equal_maxima():
    from kcv.ops.argmax import first_argmax

    values = np.array([[0.2, 0.7, 0.7, 0.1], [0.5, 0.5, 0.5, 0.5]], F)
    best, index = first_argmax(values, axis=-1)
    np.testing.assert_array_equal(best.numpy(), np.array([0.7, 0.5], F))
    np.testing.assert_array_equal(index.numpy(), [1, 0])
    np.testing.assert_array_equal(first_argmax(values, axis=0, dtype=tf.int32)[1].numpy(), [1, 0, 0, 1])


def test_step_a_ties_go_to_the_first_gt_box():
    g = [0, 0, 1, 1]
    # IoUs with both (identical) gt boxes: anchor0 1.0, anchor1 0.8, anchor2 0.6.
    # step (b) gives anchor0 <- gt0 and anchor1 <- gt1; anchor2 keeps its step (a) choice, the first box.
    anchors = [[0, 0, 1, 1], [0, 0, 1, 0.8], [0, 0, 1, 0.6]]
    np.testing.assert_array_equal(assign([g, g], anchors), [0, 1, 0])


def test_iou_equal_to_threshold_is_assigned():
    # anchor1 [0,0,1,0.5] vs gt [0,0,1,1]: IoU 0.5/1 = 0.5 >= 0.5 -> assigned in step (a)
    np.testing.assert_array_equal(assign([[0, 0, 1, 1]], [[0, 0, 1, 1], [0, 0, 1, 0.5], [0, 0, 1, 0.49]]), [0, 0, -1])


def test_gt_with_zero_iou_everywhere_is_still_assigned():
    # gt1 is far from every anchor: its column is all 0; after gt0 takes anchor0, the first
    # remaining maximum (0) in row-major order is (anchor1, gt1).
    np.testing.assert_array_equal(assign([[0, 0, 1, 1], [5, 5, 6, 6]], [[0, 0, 1, 1], [0, 0, 0.2, 0.2], [0.8, 0.8, 1, 1]]), [0, 1, -1])


def test_identical_anchors_resolve_to_lowest_index():
    np.testing.assert_array_equal(assign([[0, 0, 1, 1]], [[0, 0, 2, 2]] * 3), [0, -1, -1])  # IoU 0.25 each


def test_more_gt_than_anchors_writes_gt0_into_anchor0():
    # 1 anchor, 3 gt boxes: iteration 1 assigns its best (gt2, IoU 1); then the matrix is all -1
    # and the argmax is entry 0 -> anchor0 <- gt0 (twice). The book's quirk.
    np.testing.assert_array_equal(assign([[0, 0, 0.5, 0.5], [0, 0, 0.9, 0.9], [0, 0, 1, 1]], [[0, 0, 1, 1]]), [0])


def test_padded_columns_are_skipped_exactly():
    gt = [[9, 9, 9.5, 9.5], [0, 0, 0.5, 0.5], [0, 0, 0.9, 0.9], [0, 0, 1, 1]]
    # Valid: gt1..gt3 only; with one anchor the quirk must write the first VALID box (1), not 0.
    np.testing.assert_array_equal(assign(gt, [[0, 0, 1, 1]], valid=[False, True, True, True]), [1])


def test_multibox_target_padding_and_empty_images():
    anchors = np.array([[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]], F)
    labels = np.array(
        [
            [[-1, 0, 0, 0, 0], [2, 0.5, 0.5, 1, 1]],  # padded row first: class 2 still lands on anchor1
            [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]],  # nothing: all background
        ],
        F,
    )
    offset, mask, cls = multibox_target(anchors, labels)
    np.testing.assert_array_equal(cls.numpy(), [[0, 3], [0, 0]])  # class + 1
    np.testing.assert_array_equal(mask.numpy(), [[0, 0, 0, 0, 1, 1, 1, 1], [0] * 8])
    # anchor1 equals its box: offsets (0, 0, 5 log(1 + 1e-6), same); in float32 1 + 1e-6 rounds
    # to 1 + 8 * 2**-23 = 1.00000095, so 5 * log(.) = 4.7684e-6 (the book's 4.17e-06 is the same effect)
    np.testing.assert_allclose(offset.numpy()[0, 4:], [0, 0, 4.7683693e-06, 4.7683693e-06], rtol=1e-6)
    assert cls.dtype == tf.int64 and mask.dtype == tf.float32


def test_works_inside_a_keras_train_step():
    import keras

    anchors = tf.constant([[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0, 1, 1]]], tf.float32)

    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.head = keras.layers.Dense(3 * 4)

        def call(self, x):
            return self.head(keras.ops.reshape(x, (-1, 4)))

        def train_step(self, data):
            x, labels = data
            offsets, mask, _ = multibox_target(anchors, labels)  # (B, 12), (B, 12)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.abs(self(x) * mask - offsets * mask))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"l1": loss}  # Keras 3 would overwrite a "loss" key with its own tracker

    model = Tiny()
    model.compile(optimizer="sgd")
    labels = np.array([[[0, 0.5, 0.5, 1, 1], [-1, 0, 0, 0, 0]]] * 4, F)
    model(np.ones((1, 2, 2), F))
    before = model.head.kernel.numpy().copy()
    hist = model.fit(np.ones((4, 2, 2), F), labels, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(hist.history["l1"][0]) and hist.history["l1"][0] > 0
    assert not np.allclose(model.head.kernel.numpy(), before)  # the masked loss reached the weights
