"""Embedded dog-breed generator: Kaggle layout, determinism, breeds not given away by colour."""
import csv
import os
import re

import numpy as np
import pytest

from kcv.data.images import load_rgb
from kcv.data.sources import kaggle_dog
from kcv.data.synthetic import dogs


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_layout_is_read_by_the_kaggle_dog_source(tmp_path):
    root = dogs.write_kaggle_dog(str(tmp_path / "dog"), n_train=40, n_test=6, num_breeds=4, seed=0)
    source = kaggle_dog(root)
    source.validate()  # every listed file exists and decodes; no extra files
    names = ["beagle", "dalmatian", "dingo", "pug"]  # the first 4 breeds, sorted
    assert source.labels() == names == dogs.breed_names(4)
    train, test = source.records("train"), source.records("test")
    assert len(train) == 40 and len(test) == 6
    # balanced: 40 images over 4 breeds -> 10 each
    assert {n: sum(r.label == n for r in train) for n in names} == dict.fromkeys(names, 10)
    ids = [r.id for r in train + test]
    assert len(set(ids)) == 46 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)

    labels = _rows(os.path.join(root, "labels.csv"))
    assert labels[0] == ["id", "breed"]
    assert [r[0] for r in labels[1:]] == sorted(r.id for r in train)  # sorted by id, like Kaggle's
    submission = _rows(os.path.join(root, "sample_submission.csv"))
    assert submission[0] == ["id", *names]
    assert [r[0] for r in submission[1:]] == sorted(r.id for r in test)
    for row in submission[1:]:
        assert [float(v) for v in row[1:]] == [0.25] * 4  # uniform over 4 breeds, sums to 1

    for record in train[:5] + test[:2]:
        assert record.path.endswith(".jpg")
        with open(record.path, "rb") as f:
            assert f.read(3) == b"\xff\xd8\xff"  # JPEG magic
        h, w, c = load_rgb(record.path).shape
        assert c == 3 and 120 <= h <= 200 and 120 <= w <= 200 and h != w


def test_deterministic_by_seed_and_train_independent_of_test(tmp_path):
    a = dogs.write_kaggle_dog(str(tmp_path / "a"), n_train=10, n_test=2, seed=3)
    b = dogs.write_kaggle_dog(str(tmp_path / "b"), n_train=10, n_test=5, seed=3)
    c = dogs.write_kaggle_dog(str(tmp_path / "c"), n_train=10, n_test=2, seed=4)
    labels_a = _rows(os.path.join(a, "labels.csv"))
    assert labels_a == _rows(os.path.join(b, "labels.csv"))  # more test images, same train set
    for image_id, _ in labels_a[1:]:
        name = f"{image_id}.jpg"
        with open(os.path.join(a, "train", name), "rb") as fa, open(os.path.join(b, "train", name), "rb") as fb:
            assert fa.read() == fb.read()
    assert set(os.listdir(os.path.join(a, "test"))) < set(os.listdir(os.path.join(b, "test")))
    ids_c = {r[0] for r in _rows(os.path.join(c, "labels.csv"))[1:]}
    assert ids_c.isdisjoint(r[0] for r in labels_a[1:])  # another seed, other ids


def test_mean_colour_nearest_centroid_is_near_chance():
    images, labels = dogs.make_dogs(200, seed=0, num_breeds=5)
    means = np.stack([im.reshape(-1, 3).mean(axis=0) for im in images])  # (200, 3)
    y = np.array([dogs.breed_names(5).index(b) for b in labels])
    train, test = slice(0, 100), slice(100, 200)
    centroids = np.stack([means[train][y[train] == k].mean(axis=0) for k in range(5)])  # (5, 3)
    nearest = np.argmin(((means[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = float((nearest == y[test]).mean())
    # chance is 1/5 = 0.2; its standard error over 100 images is sqrt(0.2·0.8/100) = 0.04
    assert accuracy < 0.36


def test_breeds_differ_in_structure():
    # same random draws, different breed: the drawn dog (not only the colours) changes
    rng = lambda: np.random.default_rng(7)  # noqa: E731
    masks = {b.name: dogs._dog_masks(b, 300, 200, rng()) for b in dogs.BREEDS}
    area = {n: float(np.asarray(m["body"], dtype=np.float32).sum() / 255) for n, m in masks.items()}
    pattern = {n: float(np.asarray(m["pattern"], dtype=np.float32).sum() / 255) for n, m in masks.items()}
    assert pattern["pug"] == pattern["dingo"] == pattern["whippet"] == 0.0  # plain coats
    assert all(pattern[n] > 0.05 * area[n] for n in ("beagle", "dalmatian", "siberian_husky", "boxer"))
    assert len({round(a) for a in area.values()}) == len(dogs.BREEDS)  # every silhouette differs
    a = dogs.render(dogs.BREEDS[0], 150, 130, np.random.default_rng(1))
    assert a.shape == (130, 150, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, dogs.render(dogs.BREEDS[0], 150, 130, np.random.default_rng(1)))


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="num_breeds must be in 1..8"):
        dogs.make_dogs(4, num_breeds=9)
    with pytest.raises(ValueError, match="size_range"):
        dogs.make_dogs(4, size_range=(20, 10))
