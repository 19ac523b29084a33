"""Embedded shapes: the Kaggle CIFAR-10 and class-folder layouts, deterministic by seed."""
import csv
import os

import numpy as np
from PIL import Image

from kcv.data.synthetic import shapes


def test_kaggle_layout_and_determinism(tmp_path):
    a = shapes.write_kaggle_cifar10(str(tmp_path / "a"), n_train=20, n_test=3, seed=5)
    b = shapes.write_kaggle_cifar10(str(tmp_path / "b"), n_train=20, n_test=3, seed=5)
    with open(os.path.join(a, "trainLabels.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "label"] and [r[0] for r in rows[1:]] == [str(i) for i in range(1, 21)]
    assert {r[1] for r in rows[1:]} <= set(shapes.SHAPE_CLASSES)
    assert sorted(os.listdir(os.path.join(a, "test"))) == ["1.png", "2.png", "3.png"]
    for name in ("1.png", "20.png"):
        with open(os.path.join(a, "train", name), "rb") as fa, open(os.path.join(b, "train", name), "rb") as fb:
            assert fa.read() == fb.read()
    with Image.open(os.path.join(a, "train", "1.png")) as img:
        assert img.mode == "RGB" and img.size == (32, 32)


def test_grey_class_folders(tmp_path):
    root = shapes.write_class_folders(str(tmp_path), n=20, seed=0, size=28, grey=True)
    assert sorted(os.listdir(root)) == sorted(shapes.SHAPE_CLASSES)
    path = os.path.join(root, shapes.SHAPE_CLASSES[0], os.listdir(os.path.join(root, shapes.SHAPE_CLASSES[0]))[0])
    with Image.open(path) as img:
        assert img.size == (28, 28)
        assert np.ptp(np.asarray(img.convert("RGB")).astype(int), axis=-1).max() == 0  # grey
