"""Kaggle CSV folders: layouts read right, and every kind of bad input gives one clear line."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from kcv.data.errors import DataError
from kcv.data.sources.base import Record
from kcv.data.sources.kaggle import kaggle_cifar10, kaggle_dog, sort_by_id
from kcv.data.synthetic import shapes


def _write_kaggle(root, n=30, n_test=4):
    return shapes.write_kaggle_cifar10(str(root), n_train=n, n_test=n_test, seed=1)


def _rows(root):
    with open(os.path.join(root, "trainLabels.csv")) as f:
        return list(csv.reader(f))


def _rewrite(root, rows, name="trainLabels.csv", **kw):
    with open(os.path.join(root, name), "w", newline="", **kw) as f:
        csv.writer(f).writerows(rows)


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_kaggle_cifar10_counts_labels_and_numeric_test_order(tmp_path):
    root = _write_kaggle(tmp_path, n=30, n_test=12)
    src = kaggle_cifar10(root)
    train = src.records("train")
    assert len(train) == 30
    assert src.labels() == sorted(shapes.SHAPE_CLASSES)
    # trainLabels.csv row for id 1 is the label of train/1.png
    assert train[0].id == "1" and train[0].path.endswith(os.path.join("train", "1.png"))
    assert [r.id for r in src.records("test")] == [str(i) for i in range(1, 13)]  # 1..12, not 1,10,11,12,2
    image = src.read(train[0])
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    src.validate()


def test_bom_and_crlf_are_accepted(tmp_path):
    root = _write_kaggle(tmp_path)
    rows = _rows(root)
    with open(os.path.join(root, "trainLabels.csv"), "w", newline="", encoding="utf-8-sig") as f:
        f.write("\r\n".join(",".join(r) for r in rows) + "\r\n")
    assert len(kaggle_cifar10(root).records()) == 30


def test_missing_files_are_counted_and_named(tmp_path):
    root = _write_kaggle(tmp_path)
    os.remove(os.path.join(root, "train", "3.png"))
    os.remove(os.path.join(root, "train", "7.png"))
    with pytest.raises(DataError) as err:
        kaggle_cifar10(root)
    assert _one_line(err) == "2 files listed in trainLabels.csv are missing from train/: 3.png, 7.png"


def test_unlisted_files_are_reported(tmp_path):
    root = _write_kaggle(tmp_path)
    rows = _rows(root)
    _rewrite(root, rows[:-1])  # drop id 30's row
    with pytest.raises(DataError) as err:
        kaggle_cifar10(root)
    assert _one_line(err) == "1 files in train/ are not listed in trainLabels.csv: 30.png"


@pytest.mark.parametrize("bad_id", ["../1", "/etc/passwd", "a/b", ".."])
def test_ids_escaping_the_folder_are_refused(tmp_path, bad_id):
    root = _write_kaggle(tmp_path)
    rows = _rows(root)
    rows[1][0] = bad_id
    _rewrite(root, rows)
    with pytest.raises(DataError) as err:
        kaggle_cifar10(root)
    assert "not plain file names" in _one_line(err) and bad_id in str(err.value)


def test_symlink_out_of_the_folder_is_refused(tmp_path):
    root = _write_kaggle(tmp_path / "data")
    outside = tmp_path / "secret.png"
    Image.new("RGB", (32, 32)).save(outside)
    os.remove(os.path.join(root, "train", "5.png"))
    os.symlink(outside, os.path.join(root, "train", "5.png"))
    with pytest.raises(DataError) as err:
        kaggle_cifar10(root)
    assert _one_line(err).startswith("1 files in train/ are symlinks pointing outside") and "5.png" in str(err.value)


def test_duplicate_ids_empty_and_unknown_labels(tmp_path):
    root = _write_kaggle(tmp_path)
    rows = _rows(root)
    _rewrite(root, rows + [rows[4]])
    with pytest.raises(DataError, match=r"^1 ids in trainLabels.csv are duplicated: 4$"):
        kaggle_cifar10(root)
    rows2 = [r[:] for r in rows]
    rows2[2][1] = " "
    _rewrite(root, rows2)
    with pytest.raises(DataError, match=r"^1 rows of trainLabels.csv have an empty label: 2$"):
        kaggle_cifar10(root)
    rows3 = [r[:] for r in rows]
    rows3[3][1] = "dsik"
    _rewrite(root, rows3)
    with pytest.raises(DataError, match=r"^1 labels in trainLabels.csv are unknown .*: dsik$"):
        kaggle_cifar10(root, classes=shapes.SHAPE_CLASSES)


def test_missing_header_and_short_rows(tmp_path):
    root = _write_kaggle(tmp_path)
    rows = _rows(root)
    _rewrite(root, rows[1:])
    with pytest.raises(DataError, match="header must name columns 'id' and 'label'"):
        kaggle_cifar10(root)
    _rewrite(root, [rows[0], ["1"]] + rows[2:])
    with pytest.raises(DataError, match="^1 rows of trainLabels.csv have too few columns: line 2$"):
        kaggle_cifar10(root)


def test_unreadable_images_are_all_reported_up_front(tmp_path):
    root = _write_kaggle(tmp_path, n=40)
    open(os.path.join(root, "train", "9.png"), "wb").close()  # 0 bytes
    path = os.path.join(root, "train", "12.png")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])  # truncated
    src = kaggle_cifar10(root)  # layout is fine
    with pytest.raises(DataError) as err:
        src.validate()
    msg = _one_line(err)
    assert msg.startswith("2 images are unreadable")
    assert "9.png: empty file (0 bytes)" in msg and "12.png: unreadable image" in msg


def test_odd_image_modes_become_rgb_uint8(tmp_path):
    root = _write_kaggle(tmp_path)
    train = os.path.join(root, "train")
    Image.new("L", (32, 32), 128).save(os.path.join(train, "1.png"))
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(os.path.join(train, "2.png"))  # transparent -> white
    Image.new("P", (32, 32), 3).save(os.path.join(train, "3.png"))
    Image.fromarray(np.full((32, 32), 65535, np.uint16)).save(os.path.join(train, "4.png"))  # 16-bit white
    src = kaggle_cifar10(root)
    recs = {r.id: r for r in src.records()}
    grey = src.read(recs["1"])
    assert grey.shape == (32, 32, 3) and grey.dtype == np.uint8 and (grey == 128).all()
    assert (src.read(recs["2"]) == 255).all()
    assert src.read(recs["3"]).shape == (32, 32, 3)
    assert (src.read(recs["4"]) == 255).all()


def test_one_corrupt_file_among_many_is_found(tmp_path):
    root = _write_kaggle(tmp_path, n=300)
    with open(os.path.join(root, "train", "287.png"), "wb") as f:
        f.write(b"not a png at all")
    with pytest.raises(DataError, match=r"^1 images are unreadable: .*287.png"):
        kaggle_cifar10(root).validate()


def test_kaggle_dog_layout(tmp_path):
    root = tmp_path / "dog"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rows = [["id", "breed"]]
    for i, breed in enumerate(["beagle", "pug", "beagle", "pug"]):
        image_id = f"{i:04x}ab"
        Image.new("RGB", (50, 40), (i * 40, 0, 0)).save(root / "train" / f"{image_id}.jpg")
        rows.append([image_id, breed])
    Image.new("RGB", (50, 40)).save(root / "test" / "ffff.jpg")
    _rewrite(str(root), rows, name="labels.csv")
    src = kaggle_dog(str(root))
    assert src.labels() == ["beagle", "pug"]
    assert len(src.records()) == 4 and src.records("test")[0].id == "ffff"


def test_sort_by_id_puts_numbers_in_numeric_order_before_names():
    records = [Record(i, None, None) for i in ["10", "b", "2", "a", "1"]]
    assert [r.id for r in sort_by_id(records)] == ["1", "2", "10", "a", "b"]


def test_test_split_is_unlabelled_so_no_eval_split(tmp_path):
    src = kaggle_cifar10(_write_kaggle(tmp_path, n=10, n_test=3))
    assert src.native_splits == ("train", "test") and src.eval_split is None
    test = src.load("test")
    assert [e.id for e in test] == ["1", "2", "3"] and all(e.label is None for e in test)
    train = src.load("train")
    with open(os.path.join(src.root, "train", "1.png"), "rb") as f:
        assert train[0].encoded == f.read()  # the generator writes 8-bit RGB PNGs: stored as they are
    assert [e.label for e in train] == [r.label for r in src.records("train")]


def _tree(root):
    """{relative path: bytes} of every file under root."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


def test_write_tiny_copies_a_seeded_even_sample_in_the_same_layout(tmp_path):
    from kcv.data.sources.kaggle import write_tiny

    source = kaggle_cifar10(_write_kaggle(tmp_path / "full", n=60, n_test=9))
    counts = write_tiny(source, str(tmp_path / "tiny"), 20, 3, seed=5)
    assert (counts["train"], counts["test"], counts["sample_submission"]) == (20, 3, "sampleSubmission.csv")
    assert sorted(set(counts["per_class"].values())) in ([2], [1, 2], [2, 3])  # 10 classes, 2 each when they can
    tiny = kaggle_cifar10(str(tmp_path / "tiny"))  # a valid Kaggle folder again
    train = {r.id: r for r in source.records("train")}
    assert len(tiny.records("train")) == 20 and len(tiny.records("test")) == 3
    for r in tiny.records("train"):  # same ids, same labels, same bytes
        assert r.label == train[r.id].label and open(r.path, "rb").read() == open(train[r.id].path, "rb").read()
    rows = _rows(str(tmp_path / "tiny"))
    assert rows[0] == ["id", "label"] and [r[0] for r in rows[1:]] == sorted((r[0] for r in rows[1:]), key=int)
    sample = list(csv.reader(open(tmp_path / "tiny" / "sampleSubmission.csv")))
    assert [r[0] for r in sample[1:]] == [r.id for r in tiny.records("test")]
    # deterministic by seed; another seed draws other images; nothing left beside the output
    write_tiny(source, str(tmp_path / "again"), 20, 3, seed=5)
    assert _tree(tmp_path / "again") == _tree(tmp_path / "tiny")
    write_tiny(source, str(tmp_path / "other"), 20, 3, seed=6)
    assert _tree(tmp_path / "other") != _tree(tmp_path / "tiny")
    assert sorted(os.listdir(tmp_path)) == ["again", "full", "other", "tiny"]


def test_write_tiny_dog_layout_keeps_the_breed_column(tmp_path):
    from kcv.data.sources.kaggle import write_tiny
    from kcv.data.synthetic import dogs

    root = dogs.write_kaggle_dog(str(tmp_path / "dogs"), n_train=12, n_test=4, num_breeds=3, seed=0)
    write_tiny(kaggle_dog(root), str(tmp_path / "tiny"), 6, 2)
    tiny = kaggle_dog(str(tmp_path / "tiny"))
    assert len(tiny.records("train")) == 6 and tiny.labels() == kaggle_dog(root).labels()
    assert next(csv.reader(open(tmp_path / "tiny" / "labels.csv"))) == ["id", "breed"]
    header = next(csv.reader(open(tmp_path / "tiny" / "sample_submission.csv")))
    assert header == ["id", *kaggle_dog(root).labels()]


def test_write_tiny_refusals_are_one_line_and_write_nothing(tmp_path):
    from kcv.data.sources.kaggle import write_tiny

    source = kaggle_cifar10(_write_kaggle(tmp_path / "full", n=30, n_test=4))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("mine")
    cases = [((str(tmp_path / "busy"), 5, 1), "exists and is not an empty folder"),
             ((str(tmp_path / "full" / "train" / "t"), 5, 1), "inside the source's train/ folder"),
             ((str(tmp_path / "a"), 31, 1), "has 30 labelled images, fewer than the 31 asked for"),
             ((str(tmp_path / "b"), 5, 5), "test has 4 images, fewer than the 5 asked for")]
    for args, message in cases:
        with pytest.raises(DataError) as err:
            write_tiny(source, *args)
        assert message in _one_line(err)
    assert sorted(os.listdir(tmp_path)) == ["busy", "full"] and os.listdir(tmp_path / "busy") == ["x"]
    (tmp_path / "empty").mkdir()  # an empty folder is filled
    assert write_tiny(source, str(tmp_path / "empty"), 5, 1)["train"] == 5
