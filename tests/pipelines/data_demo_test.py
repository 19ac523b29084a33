"""kcv-data --make_tiny: the book's and the Chinese edition's tiny Kaggle sets from any Kaggle folder."""
import csv
import os
import subprocess
import sys
from collections import Counter

import pytest

from kcv.data.sources.kaggle import TINY_SIZES, kaggle_cifar10, kaggle_dog

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def kcv_data(*args):
    return subprocess.run([sys.executable, "-m", "pipelines.data_demo", *args], capture_output=True, text=True,
                          timeout=300, env=ENV)


def _error(out) -> str:
    lines = [line for line in out.stderr.splitlines() if line.startswith("kcv-data:")]
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    return lines[0]


def test_the_book_numbers():
    # BOOK.md section 7: kaggle_cifar10_tiny.zip = the first 1000 training images and 5 test images
    assert TINY_SIZES == {"book": (1000, 5), "zh": (80, 100)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from kcv.data.synthetic import dogs, shapes

    root = tmp_path_factory.mktemp("kaggle")
    return (shapes.write_kaggle_cifar10(str(root / "cifar"), n_train=1010, n_test=8, seed=0),
            dogs.write_kaggle_dog(str(root / "dogs"), n_train=90, n_test=104, num_breeds=5, seed=0))


def test_book_tiny_cifar10(folders, tmp_path):
    cifar, _ = folders
    out = kcv_data("--source=kaggle_cifar10", f"--data_dir={cifar}", "--make_tiny=book",
                   f"--output={tmp_path / 'tiny'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1000 labelled training images (10 classes, 100 each), 5 test images" in out.stdout
    tiny = kaggle_cifar10(str(tmp_path / "tiny"))
    assert len(tiny.records("train")) == 1000 and len(tiny.records("test")) == 5
    assert set(Counter(r.label for r in tiny.records("train")).values()) == {100}
    assert sorted(os.listdir(tmp_path)) == ["tiny"]  # no temporary left beside it


def test_zh_tiny_dogs_is_seeded(folders, tmp_path):
    _, dogs = folders
    from kcv.data.sources import open_source
    from kcv.data.sources.kaggle import write_tiny

    # "a" through the binary; "b" (the same seed) and "c" (another) through the library it calls
    out = kcv_data("--source=kaggle_dog", f"--data_dir={dogs}", "--make_tiny=zh", "--seed=1",
                   f"--output={tmp_path / 'a'}")
    assert out.returncode == 0, out.stderr[-2000:]
    for name, seed in (("b", 1), ("c", 2)):
        write_tiny(open_source("kaggle_dog", data_dir=dogs), str(tmp_path / name), *TINY_SIZES["zh"], seed)
    runs = {name: (open(tmp_path / name / "labels.csv").read(), sorted(os.listdir(tmp_path / name / "test")))
            for name in "abc"}
    tiny = kaggle_dog(str(tmp_path / "a"))
    assert len(tiny.records("train")) == 80 and len(tiny.records("test")) == 100
    assert set(Counter(r.label for r in tiny.records("train")).values()) == {16}  # 5 breeds
    assert next(csv.reader(open(tmp_path / "a" / "sample_submission.csv"))) == ["id", *tiny.labels()]
    assert runs["a"] == runs["b"] and runs["a"] != runs["c"]


def test_refusals_are_one_line(folders, tmp_path):
    cifar, dogs = folders
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    base = ["--source=kaggle_cifar10", f"--data_dir={cifar}", "--make_tiny=book"]
    assert _error(kcv_data(*base, f"--output={busy}")) == (
        f"kcv-data: error: --output {busy} exists and is not an empty folder")
    assert (busy / "keep.txt").read_text() == "mine"
    assert "--output is required with --make_tiny" in _error(kcv_data(*base))
    assert "--source must be kaggle_cifar10 or kaggle_dog" in _error(
        kcv_data("--source=class_folders", f"--data_dir={cifar}", "--make_tiny=zh", f"--output={tmp_path / 'x'}"))
    line = _error(kcv_data("--source=kaggle_dog", f"--data_dir={dogs}", "--make_tiny=book",
                           f"--output={tmp_path / 'y'}"))
    assert line == f"kcv-data: error: {dogs} has 90 labelled images, fewer than the 1000 asked for"
    huge = kcv_data(*base[:2], "--make_tiny=huge", f"--output={tmp_path / 'z'}")
    assert "value should be one of <book|zh>" in _error(huge)
    assert sorted(os.listdir(tmp_path)) == ["busy"]
