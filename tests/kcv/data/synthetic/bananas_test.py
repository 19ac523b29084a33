"""Embedded banana scenes: the book's layout, determinism, boxes that fit the drawn object."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from kcv.data.sources.bananas import HEADER, read_bananas
from kcv.data.synthetic.bananas import _background, render_scene, write_bananas


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_bananas(str(tmp_path_factory.mktemp("bananas")), num_train=6, num_val=3, seed=1)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_layout_matches_the_book(root):
    for split, n in (("train", 6), ("val", 3)):
        folder = os.path.join(root, f"bananas_{split}")
        rows = _rows(os.path.join(folder, "label.csv"))
        assert tuple(rows[0]) == HEADER == ("img_name", "label", "xmin", "ymin", "xmax", "ymax")
        assert [r[0] for r in rows[1:]] == [f"{i}.png" for i in range(n)]  # one banana per image
        assert all(r[1] == "0" for r in rows[1:])
        for r in rows[1:]:
            with Image.open(os.path.join(folder, "images", r[0])) as img:
                assert img.size == (256, 256) and img.mode == "RGB"
            x0, y0, x1, y1 = map(int, r[2:])
            assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256


def test_deterministic(tmp_path, root):
    again = write_bananas(str(tmp_path), num_train=6, num_val=3, seed=1)
    for split in ("train", "val"):
        assert _rows(os.path.join(again, f"bananas_{split}", "label.csv")) == \
            _rows(os.path.join(root, f"bananas_{split}", "label.csv"))
    a = np.asarray(Image.open(os.path.join(again, "bananas_train", "images", "3.png")))
    b = np.asarray(Image.open(os.path.join(root, "bananas_train", "images", "3.png")))
    np.testing.assert_array_equal(a, b)
    other = write_bananas(str(tmp_path / "other"), num_train=6, num_val=1, seed=2)
    assert _rows(os.path.join(other, "bananas_train", "label.csv")) != \
        _rows(os.path.join(root, "bananas_train", "label.csv"))


def test_box_is_tight_around_the_pasted_object():
    # The background is drawn first from the same generator, so rendering it alone with the same
    # seed gives the scene without the banana; pixels that changed by more than 60 (sensor noise
    # has sigma <= 6) are the banana. Their bounding box lies inside the labelled box, and
    # typically fills it (faint, background-coloured edge pixels may not count as changed).
    ious = []
    for seed in range(12):
        image, boxes = render_scene(np.random.default_rng(seed), 256, 1)
        background = _background(np.random.default_rng(seed), 256)
        changed = np.abs(image.astype(int) - background.astype(int)).max(-1) > 60
        ys, xs = np.nonzero(changed)
        inner = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        x0, y0, x1, y1 = boxes[0]
        assert x0 <= inner[0] and y0 <= inner[1] and inner[2] <= x1 and inner[3] <= y1, (seed, boxes, inner)
        ious.append((inner[2] - inner[0]) * (inner[3] - inner[1]) / ((x1 - x0) * (y1 - y0)))
        # Objects are 14-42% of the side long (arc length); their boxes are at least ~20 px.
        assert 20 <= max(x1 - x0, y1 - y0) <= 0.45 * 256
    assert np.median(ious) > 0.85


def test_object_image_is_pasted(tmp_path):
    # A red square cut-out (RGBA) replaces the drawn banana; its box covers red pixels.
    sprite = np.zeros((40, 40, 4), np.uint8)
    sprite[10:30, 10:30] = (255, 0, 0, 255)
    path = str(tmp_path / "obj.png")
    Image.fromarray(sprite, "RGBA").save(path)
    root = write_bananas(str(tmp_path / "data"), num_train=2, num_val=0, object_image=path)
    rec = read_bananas(root, "train")[0]
    img = np.asarray(Image.open(rec.path)).astype(int)
    x0, y0, x1, y1 = np.round(rec.boxes[0] * 256).astype(int)
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert red[y0:y1, x0:x1].mean() > 0.4
