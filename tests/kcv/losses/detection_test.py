"""kcv.losses.detection_loss (the book's calc_loss) against hand-computed numbers."""
import numpy as np
import tensorflow as tf

from kcv.losses import detection_loss


def test_detection_loss_by_hand():
    # One image, two anchors, background + 1 class. Logits 0 -> CE = log 2 per anchor; mean log 2.
    # Anchor 0 positive (mask 1) with target offsets (1, -1, 0, 2) and preds (0, 0, 0, 0): L1
    # entries 1, 1, 0, 2; anchor 1 masked out (pred 5 ignored). Mean over 4A = 8 entries: 4 / 8.
    cls_preds = tf.zeros([1, 2, 2])
    cls_labels = tf.constant([[1, 0]], tf.int64)
    bbox_preds = tf.constant([[0.0, 0, 0, 0, 5, 5, 5, 5]])
    bbox_labels = tf.constant([[1.0, -1, 0, 2, 0, 0, 0, 0]])
    masks = tf.constant([[1.0, 1, 1, 1, 0, 0, 0, 0]])
    loss = detection_loss(cls_preds, bbox_preds, cls_labels, bbox_labels, masks)
    np.testing.assert_allclose(loss.numpy(), [np.log(2) + 0.5], rtol=1e-6)


def test_per_image_losses_and_class_cross_entropy():
    # Two images, one anchor each, no positive boxes (all masks 0): only the cross-entropy counts.
    # Image 0: logits (2, 0), label 0 -> softplus(-2) = log(1 + e^-2) = 0.126928;
    # image 1: the same logits, label 1 -> softplus(2) = 2.126928.
    cls_preds = tf.constant([[[2.0, 0.0]], [[2.0, 0.0]]])
    cls_labels = tf.constant([[0], [1]], tf.int64)
    zeros = tf.zeros([2, 4])
    loss = detection_loss(cls_preds, tf.ones([2, 4]), cls_labels, zeros, zeros)
    np.testing.assert_allclose(loss.numpy(), [np.log1p(np.exp(-2.0)), np.log1p(np.exp(2.0))], rtol=1e-6)
