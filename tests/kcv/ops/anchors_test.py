import numpy as np
import pytest
import tensorflow as tf

from kcv.ops import anchors_for_size, multibox_prior


def test_book_catdog_anchor():
    boxes = multibox_prior(tf.zeros((1, 561, 728, 3)), sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5])
    assert boxes.shape == (1, 2042040, 4)  # 561 * 728 * (3 + 3 - 1)
    boxes = tf.reshape(boxes, (561, 728, 5, 4))
    np.testing.assert_allclose(boxes[250, 250, 0].numpy(), [0.05511677, 0.07152405, 0.63307005, 0.82152402], atol=1e-7)


def test_hand_values_order_and_square_in_pixels():
    # H=2, W=4, sizes [0.5, 0.25], ratios [1, 4]: k = 3 anchors per pixel.
    a = anchors_for_size(2, 4, [0.5, 0.25], [1, 4]).numpy().reshape(2, 4, 3, 4)
    # pixel (y=0, x=0): centre ((0+0.5)/4, (0+0.5)/2) = (0.125, 0.25)
    # (s=0.5, r=1): w = 0.5 * 2/4 = 0.25, h = 0.5     -> [0, 0, 0.25, 0.5]  (1 x 1 pixel: square)
    # (s=0.25, r=1): w = 0.125, h = 0.25              -> [0.0625, 0.125, 0.1875, 0.375]
    # (s=0.5, r=4): w = 0.5 * 2 * 2/4 = 0.5, h = 0.25 -> [-0.125, 0.125, 0.375, 0.375] (unclipped)
    np.testing.assert_allclose(
        a[0, 0], [[0, 0, 0.25, 0.5], [0.0625, 0.125, 0.1875, 0.375], [-0.125, 0.125, 0.375, 0.375]], atol=1e-7
    )
    # pixel (y=1, x=3) flat index (1*4 + 3)*3 + 0 = 21: centre (3.5/4, 1.5/2) = (0.875, 0.75)
    flat = anchors_for_size(2, 4, [0.5, 0.25], [1, 4]).numpy()
    np.testing.assert_allclose(flat[21], [0.75, 0.5, 1.0, 1.0], atol=1e-7)


def test_dynamic_shape_inside_tf_function():
    fn = tf.function(lambda x: multibox_prior(x, [0.5], [1, 2]), input_signature=[tf.TensorSpec([None, None, None, 3])])
    out = fn(tf.zeros((2, 3, 5, 3)))
    assert out.shape == (1, 3 * 5 * 2, 4)
    np.testing.assert_array_equal(out.numpy(), multibox_prior(tf.zeros((1, 3, 5, 3)), [0.5], [1, 2]).numpy())


def test_graph_with_only_the_width_static_is_bit_identical():
    fn = tf.function(lambda x: multibox_prior(x, [0.75, 0.5], [1, 2]), input_signature=[tf.TensorSpec([1, None, 7, 3])])
    np.testing.assert_array_equal(fn(tf.zeros((1, 5, 7, 3))).numpy(), multibox_prior(tf.zeros((1, 5, 7, 3)), [0.75, 0.5], [1, 2]).numpy())


def test_bad_inputs():
    with pytest.raises(ValueError, match="rank 4"):
        multibox_prior(tf.zeros((3, 5, 3)), [0.5], [1])
    with pytest.raises(ValueError, match="non-empty"):
        anchors_for_size(3, 5, [], [1])
