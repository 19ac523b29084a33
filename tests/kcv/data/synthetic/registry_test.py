"""The generator registry: every generator's data opens with its source, and write() is race-safe."""
import os
import threading

import pytest

from kcv.data import synthetic
from kcv.data.sources import PointsCsvSource, open_source
from kcv.data.sources.points import write_points_csv
from kcv.data.synthetic import Generator, toy_gaussian

NAMES = ["shapes_kaggle_cifar10", "shapes_grey_folders", "toy_gaussian_points", "sprites", "bananas", "dogs_kaggle"]


def test_every_generator_writes_what_its_source_reads(tmp_path):
    assert synthetic.list_generators() == NAMES
    expected = {"shapes_kaggle_cifar10": "kaggle_cifar10", "shapes_grey_folders": "class_folders",
                "toy_gaussian_points": "points_csv", "sprites": "images", "bananas": "bananas",
                "dogs_kaggle": "kaggle_dog"}
    for name in NAMES:
        generator = synthetic.get_generator(name)
        assert generator.name == name and generator.source == expected[name]
        folder = synthetic.write(name, str(tmp_path / name), 12, seed=1)
        source = open_source(generator.source, data_dir=folder)
        assert len(source.load("train")) == 12, name
        for split in source.native_splits:
            source.load(split)  # every image decodes
    # the arguments of the old embedded writers: 20 Kaggle test images, max(20, n // 10) val scenes
    assert len(open_source("kaggle_cifar10", data_dir=str(tmp_path / "shapes_kaggle_cifar10")).records("test")) == 20
    assert len(open_source("bananas", data_dir=str(tmp_path / "bananas")).records("val")) == 20
    assert len(open_source("kaggle_dog", data_dir=str(tmp_path / "dogs_kaggle")).labels()) == 5


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown embedded data generator 'mnist'; use one of shapes_kaggle_cifar10, "):
        synthetic.write("mnist", str(tmp_path / "x"), 10)
    assert not os.path.exists(tmp_path / "x")


def test_an_existing_folder_is_returned_untouched(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    assert synthetic.write("toy_gaussian_points", str(folder), 10) == str(folder)
    assert os.listdir(folder) == ["mine.txt"]


def _barrier_generator(monkeypatch, parties):
    """Register a generator that waits until `parties` writers are all generating, so they race."""
    barrier = threading.Barrier(parties, timeout=30)

    def fn(root, n, seed):
        barrier.wait()
        return write_points_csv(root, toy_gaussian.make_data(n, seed=seed))

    monkeypatch.setitem(synthetic.GENERATORS, "racing", Generator("racing", fn, "points_csv"))


def test_concurrent_writers_both_get_the_complete_folder(tmp_path, monkeypatch):
    _barrier_generator(monkeypatch, 2)
    folder = str(tmp_path / "data")
    results, errors = [], []

    def writer():
        try:
            results.append(synthetic.write("racing", folder, 50, seed=2))
        except Exception as err:  # surfaced below: a thread's exception would otherwise be lost
            errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and results == [folder, folder]
    assert len(PointsCsvSource(folder).points) == 50
    assert os.listdir(tmp_path) == ["data"]  # the loser removed its temporary


def test_only_its_own_temporaries_are_deleted(tmp_path, monkeypatch):
    other = tmp_path / ".data.tmp-another-process"  # what a concurrent writer's temporary looks like
    other.mkdir()
    (other / "points.csv").write_text("x1\n1\n")
    folder = synthetic.write("toy_gaussian_points", str(tmp_path / "data"), 10)
    assert (other / "points.csv").read_text() == "x1\n1\n"
    assert sorted(os.listdir(tmp_path)) == [".data.tmp-another-process", "data"]
    assert len(PointsCsvSource(folder).points) == 10

    def broken(root, n, seed):
        write_points_csv(root, toy_gaussian.make_data(n, seed=seed))
        raise RuntimeError("generator crashed")

    monkeypatch.setitem(synthetic.GENERATORS, "broken", Generator("broken", broken, "points_csv"))
    with pytest.raises(RuntimeError, match="crashed"):
        synthetic.write("broken", str(tmp_path / "half"), 10)
    assert sorted(os.listdir(tmp_path)) == [".data.tmp-another-process", "data"]  # no half folder left
