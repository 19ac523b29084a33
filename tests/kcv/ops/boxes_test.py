import numpy as np
import tensorflow as tf

from kcv.ops import box_area, box_center_to_corner, box_corner_to_center


def test_book_dog_cat_round_trip():
    boxes = np.array([[60.0, 45.0, 378.0, 516.0], [400.0, 112.0, 655.0, 493.0]], np.float32)
    center = box_corner_to_center(boxes).numpy()
    # dog: cx = (60+378)/2 = 219, cy = (45+516)/2 = 280.5, w = 318, h = 471
    np.testing.assert_array_equal(center[0], [219.0, 280.5, 318.0, 471.0])
    np.testing.assert_array_equal(box_center_to_corner(center).numpy(), boxes)  # the book prints all True


def test_any_leading_shape_and_area():
    boxes = tf.reshape(tf.constant([0.0, 0.0, 2.0, 3.0] * 6), (2, 3, 4))
    assert box_corner_to_center(boxes).shape == (2, 3, 4)
    np.testing.assert_array_equal(box_area(boxes).numpy(), np.full((2, 3), 6.0))  # 2 * 3
