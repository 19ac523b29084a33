"""Confusion matrices, precision-recall curves and training curves: numbers by hand, pictures rendered."""
import numpy as np
import pytest

from kcv.metrics.detection import average_precision_table
from kcv.viz.figures import figure_to_array, training_curves
from kcv.viz.reports import confusion_figure, confusion_matrix, precision_recall_curves, precision_recall_figure


def test_confusion_matrix_counts_by_hand():
    labels = [0, 0, 1, 2, 2, 2]
    predicted = [0, 1, 1, 2, 0, 2]
    np.testing.assert_array_equal(confusion_matrix(labels, predicted, 3),
                                  [[1, 1, 0], [0, 1, 0], [1, 0, 2]])  # rows: truth, columns: prediction
    assert confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="differ"):
        confusion_matrix([0, 1], [0], 2)


def test_confusion_figure_renders_rgb():
    picture = figure_to_array(confusion_figure([[3, 1], [0, 4]], ["cat", "dog"]))
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.shape[0] > 200 and picture.shape[1] > 200 and picture.std() > 0


def test_precision_recall_curve_by_hand_and_its_mean_is_the_ap():
    # one image, two objects of class 0; three detections: hit (0.9), miss (0.8), hit (0.7)
    truths = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0, 0]))]
    dets = [(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], float),
             np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))]
    curve = precision_recall_curves(dets, truths, num_classes=2)
    assert curve[1] is None  # no ground truth of class 1
    # recall 0..0.5: precision 1; recall (0.5, 1]: envelope 2/3
    np.testing.assert_allclose(curve[0][:51], 1.0)
    np.testing.assert_allclose(curve[0][51:], 2 / 3)
    table = average_precision_table(dets, truths, num_classes=2, iou_thresholds=(0.5,))
    assert curve[0].mean() == pytest.approx(table[0, 0])
    assert figure_to_array(precision_recall_figure({"banana": curve[0], "none": None})).shape[2] == 3


def test_training_curves_draw_the_books_series():
    fig = training_curves({"loss": [2.0, 1.0], "accuracy": [0.3, 0.6], "val_accuracy": [0.25, 0.5],
                           "val_loss": [2.1, 1.2]})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["train loss", "train acc", "valid acc"]
    assert [l.get_label() for l in training_curves({"d_loss": [1], "g_loss": [2]}).axes[0].get_lines()] == [
        "d_loss", "g_loss"]
    assert [l.get_label() for l in training_curves({"other": [1, 2]}).axes[0].get_lines()] == ["other"]
