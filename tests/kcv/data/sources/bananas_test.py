"""The banana-detection reader and source: CSV checks, normalised boxes, loading with boxes."""
import csv
import os

import numpy as np
import pytest

from kcv.data.errors import DataError
from kcv.data.sources import open_source
from kcv.data.sources.bananas import HEADER, BananasSource, load_bananas, read_bananas, records_to_labels
from kcv.data.synthetic.bananas import write_bananas


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


def test_header_is_the_books():
    assert HEADER == ("img_name", "label", "xmin", "ymin", "xmax", "ymax")


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


def test_source_loads_boxes_and_evaluates_on_val(root):
    src = open_source("bananas", data_dir=root)
    assert isinstance(src, BananasSource)
    assert src.native_splits == ("train", "val") and src.eval_split == "val" and src.labels() == ["banana"]
    records = read_bananas(root, "val")
    examples = src.load("val")
    assert [e.id for e in examples] == ["0", "1", "2"] == [r.id for r in src.records("val")]
    for e, r in zip(examples, records):
        with open(r.path, "rb") as f:
            assert e.encoded == f.read()  # 8-bit RGB PNGs are stored as they are
        assert e.label is None and e.features is None
        assert e.boxes.dtype == np.float32 and e.boxes.shape == (1, 4)  # (N, 4) normalised xyxy
        assert e.box_classes.dtype == np.int64 and e.box_classes.tolist() == [0]
        np.testing.assert_array_equal(e.boxes, r.boxes)
    with pytest.raises(ValueError, match="train and val"):
        src.load("test")


def test_source_reports_unreadable_images_together(tmp_path):
    root = write_bananas(str(tmp_path), num_train=4, num_val=1, image_size=64, seed=0)
    src = BananasSource(root)  # the reader checked the layout; pixels are read by load()
    for i in (1, 3):
        path = os.path.join(root, "bananas_train", "images", f"{i}.png")
        data = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"^2 images are unreadable .*1.png.*3.png"):
        src.load("train")
