"""image_grid: layout by hand, float mapping, PNG written."""
import numpy as np
import pytest
from PIL import Image

from kcv.viz.grids import image_grid, to_uint8


def test_layout_hand_checked(tmp_path):
    # Three 2x2 grey images 10, 20, 30; 2 columns, padding 1 -> 2 rows:
    # height 2*(2+1)+1 = 7, width 2*(2+1)+1 = 7; image i sits at (1 + 3*row, 1 + 3*col).
    images = np.stack([np.full((2, 2, 1), v, np.uint8) for v in (10, 20, 30)])
    path = tmp_path / "sub" / "grid.png"
    grid = image_grid(images, ncols=2, path=str(path), padding=1, pad_value=255)
    assert grid.shape == (7, 7, 1)
    assert (grid[1:3, 1:3] == 10).all() and (grid[1:3, 4:6] == 20).all() and (grid[4:6, 1:3] == 30).all()
    assert (grid[4:6, 4:6] == 255).all()  # empty last cell
    assert (grid[0] == 255).all() and (grid[:, 3] == 255).all()  # padding lines
    np.testing.assert_array_equal(np.asarray(Image.open(path)), grid[..., 0])


def test_float_images_map_from_tanh_range():
    # (x + 1) * 127.5: -1 -> 0, 0 -> 127.5 -> 128 (round half to even), 1 -> 255; outside is clipped.
    np.testing.assert_array_equal(to_uint8(np.array([-1.0, 0.0, 1.0, 2.0, -3.0])), [0, 128, 255, 255, 0])
    grid = image_grid(np.zeros((2, 3, 3, 3), np.float32), ncols=4, padding=0)
    assert grid.shape == (3, 6, 3) and (grid == 128).all()  # ncols capped at the image count


def test_bad_input():
    with pytest.raises(ValueError, match="need images"):
        image_grid(np.zeros((0, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="ncols must be >= 1"):
        image_grid(np.zeros((2, 4, 4, 3), np.uint8), ncols=0)
