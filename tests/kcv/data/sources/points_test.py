"""points.csv: (n, d) vectors written and read back exactly, loaded as feature examples."""
import numpy as np
import pytest

from kcv.data.errors import DataError
from kcv.data.sources.points import PointsCsvSource, write_points_csv


def test_round_trip_and_load_gives_features(tmp_path):
    points = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
    src = PointsCsvSource(write_points_csv(str(tmp_path), points))
    np.testing.assert_array_equal(src.points, points)
    assert src.labels() == [] and src.native_splits == ("train",) and src.eval_split is None
    assert [r.id for r in src.records()] == [str(i) for i in range(1, 8)]
    examples = src.load("train")
    assert [e.id for e in examples] == [r.id for r in src.records()]
    for e, p in zip(examples, points):
        assert e.encoded == b"" and e.label is None and e.boxes is None
        assert e.features.dtype == np.float32 and e.features.shape == (3,)
        np.testing.assert_array_equal(e.features, p)
    with pytest.raises(TypeError, match="not images"):
        src.read(src.records()[0])
    with pytest.raises(ValueError, match="one split"):
        src.load("test")


def test_bad_files_are_one_line(tmp_path):
    with pytest.raises(DataError, match="no points.csv"):
        PointsCsvSource(str(tmp_path))
    (tmp_path / "points.csv").write_text("x1,x2\n1,2\n3\n4,five\n")
    with pytest.raises(DataError, match=r"^2 rows of points.csv are not 2 numbers: line 3, line 4$"):
        PointsCsvSource(str(tmp_path))
    (tmp_path / "points.csv").write_text("x1,x2\n1,nan\n")
    with pytest.raises(DataError, match="must be finite"):
        PointsCsvSource(str(tmp_path))
