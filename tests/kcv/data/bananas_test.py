"""Embedded banana scenes: the book's layout, determinism, boxes that fit the drawn object, CSV checks."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from kcv.data.bananas import (
    HEADER,
    _background,
    load_bananas,
    read_bananas,
    records_to_labels,
    render_scene,
    write_bananas,
)
from kcv.data.errors import DataError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_bananas(str(tmp_path_factory.mktemp("bananas")), num_train=6, num_val=3, seed=1)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _rewrite(root, split, rows):
    path = os.path.join(root, f"bananas_{split}", "label.csv")
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


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


def test_several_objects_per_image(tmp_path):
    root = write_bananas(str(tmp_path), num_train=5, num_val=1, objects_per_image=(2, 3), seed=0)
    records = read_bananas(root, "train")
    assert len(records) == 5
    counts = [len(r.classes) for r in records]
    assert all(2 <= c <= 3 for c in counts)  # placement may fail only with heavy crowding
    labels = records_to_labels(records, max_objects=4)
    assert labels.shape == (5, 4, 5)
    assert (labels[0, counts[0]:, 0] == -1).all()
    with pytest.raises(ValueError, match="objects_per_image"):
        write_bananas(str(tmp_path / "bad"), objects_per_image=0)


def test_reader_and_loader(root):
    records = read_bananas(root, "val")
    assert [r.img_name for r in records] == ["0.png", "1.png", "2.png"]
    rows = _rows(os.path.join(root, "bananas_val", "label.csv"))
    # Normalised = pixel / 256 for the 256x256 images.
    np.testing.assert_allclose(records[1].boxes[0], np.array(rows[2][2:], float) / 256, rtol=1e-6)
    assert records[1].classes.tolist() == [0]
    images, labels = load_bananas(root, "val")
    assert images.shape == (3, 256, 256, 3) and images.dtype == np.uint8
    assert labels.shape == (3, 1, 5) and labels.dtype == np.float32  # the book's (N, 1, 5)
    np.testing.assert_allclose(labels[1, 0, 1:], records[1].boxes[0])


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


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows + [["99.png", "0", "1", "1", "5", "5"]], "1 bad rows .*line 8 \\(99.png\\): image file missing"),
    (lambda rows: rows[:2] + [[rows[2][0], "0", "50", "10", "40", "20"]] + rows[3:], "xmin < xmax"),
    (lambda rows: rows[:2] + [[rows[2][0], "0", "10", "10", "300", "20"]] + rows[3:], "outside the 256x256 image"),
    (lambda rows: rows[:2] + [[rows[2][0], "0", "x", "10", "30", "20"]] + rows[3:], "not a number"),
    (lambda rows: rows[:2] + [[rows[2][0], "-1", "1", "1", "30", "20"]] + rows[3:], "label must be an integer"),
    (lambda rows: rows[:2] + [["../1.png", "0", "1", "1", "30", "20"]] + rows[3:], "plain file name"),
    (lambda rows: [["name", "label", "a", "b", "c", "d"]] + rows[1:], "header must be img_name,label"),
])
def test_bad_csv_gives_one_line_error(tmp_path, edit, message):
    root = write_bananas(str(tmp_path), num_train=6, num_val=1, seed=1)
    rows = _rows(os.path.join(root, "bananas_train", "label.csv"))
    _rewrite(root, "train", edit(rows))
    with pytest.raises(DataError, match=message) as err:
        read_bananas(root, "train")
    assert "\n" not in str(err.value)


def test_many_bad_rows_are_counted(tmp_path):
    root = write_bananas(str(tmp_path), num_train=6, num_val=1, seed=1)
    rows = _rows(os.path.join(root, "bananas_train", "label.csv"))
    bad = [rows[0]] + [[r[0], "0", "9", "9", "1", "1"] for r in rows[1:]]
    _rewrite(root, "train", bad)
    with pytest.raises(DataError, match=r"^6 bad rows in .*line 2 \(0.png\).*\(and 1 more\)$"):
        read_bananas(root, "train")
    with pytest.raises(DataError, match="no banana labels"):
        read_bananas(str(tmp_path / "nowhere"), "val")
