"""open_source: every known spec opens its layout, and bad specs or folders give one clear line."""
import pytest

from kcv.data.errors import DataError
from kcv.data.sources import open_source


def test_open_source_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        open_source("kaggle_cifar10", data_dir=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="unknown data source 'parquet'"):
        open_source("parquet", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="no train/ folder"):
        open_source("kaggle_cifar10", data_dir=str(tmp_path))
