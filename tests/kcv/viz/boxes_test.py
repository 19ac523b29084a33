import os

import numpy as np
import pytest
from PIL import Image

from kcv.viz.boxes import BoxPanel, bbox_to_rect, box_figure, draw_boxes, save_figure, show_bboxes, to_pixels


def test_bbox_to_rect_geometry():
    rect = bbox_to_rect([60.0, 45.0, 378.0, 516.0], "blue")  # the book's dog box
    assert rect.xy == (60.0, 45.0) and rect.get_width() == 318.0 and rect.get_height() == 471.0
    assert not rect.get_fill() and rect.get_linewidth() == 2


def test_show_bboxes_colors_cycle_and_labels():
    fig = draw_boxes(np.zeros((20, 30, 3), np.uint8), [], title=None)
    ax = fig.axes[0]
    boxes = [[0, 0, 5, 5], [1, 1, 6, 6], [2, 2, 7, 7], [3, 3, 8, 8], [4, 4, 9, 9], [5, 5, 10, 10]]
    show_bboxes(ax, boxes, labels=["a", "b"], colors=None)
    edge = [p.get_edgecolor() for p in ax.patches]
    assert edge[0] == edge[5] and edge[0] != edge[1]  # b, g, r, m, c, then b again
    assert [t.get_text() for t in ax.texts] == ["a", "b"]  # only as many labels as given
    show_bboxes(ax, [[0, 0, 1, 1]], labels="w-box", colors="w")
    assert ax.texts[-1].get_color() == "k"  # black text on a white box


def test_to_pixels():
    np.testing.assert_array_equal(to_pixels([[0.5, 0.25, 1.0, 1.0]], (40, 100, 3)), [[50, 10, 100, 40]])


def test_saved_png_has_the_box_where_expected(tmp_path):
    image = np.zeros((60, 80, 3), np.uint8)
    fig = box_figure(image, [BoxPanel(np.array([[10.0, 10.0, 70.0, 50.0]]), ["x"], ["r"], "one"), BoxPanel(np.zeros((0, 4)))])
    path = tmp_path / "boxes.png"
    save_figure(fig, str(path))
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 100  # the red rectangle outline was drawn
    cols = np.nonzero(red.any(axis=0))[0]
    assert cols.max() < pixels.shape[1] / 2  # only in the left panel
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


def test_bad_format_leaves_no_file(tmp_path):
    fig = draw_boxes(np.zeros((8, 8, 3)), [[1, 1, 4, 4]])
    with pytest.raises(ValueError, match="unsupported image format"):
        save_figure(fig, str(tmp_path / "out.xyz"))
    assert os.listdir(tmp_path) == []


def test_bad_image_shape():
    with pytest.raises(ValueError, match="image must be"):
        draw_boxes(np.zeros((8, 8)), [[1, 1, 4, 4]])
