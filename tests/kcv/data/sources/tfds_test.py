"""tensorflow-datasets sources: offline by default, and the Source interface over a tiny local dataset."""
import time

import numpy as np
import pytest

from kcv.data.errors import DataError
from kcv.data.images import decode_rgb
from kcv.data.sources.tfds import TfdsSource


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_tfds_offline_fails_fast_naming_the_flags(tmp_path):
    start = time.time()
    with pytest.raises(DataError) as err:
        TfdsSource("mnist", data_dir=str(tmp_path))
    assert time.time() - start < 30  # never the minutes-long download retry loop
    msg = _one_line(err)
    assert "--data_dir" in msg and "--download" in msg


def _tiny_tfds(data_dir, test=True):
    """A prepared 3-class tfds dataset of 8x8 grey images, written locally (no network)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    def split(n, seed):
        rng = np.random.default_rng(seed)
        return tf.data.Dataset.from_tensor_slices(
            {"image": rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8), "label": np.arange(n) % 3})

    splits = {"train": split(6, 0), **({"test": split(3, 1)} if test else {})}
    name = "kcv_tiny" if test else "kcv_tiny_train_only"
    features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 1)),
                                           "label": tfds.features.ClassLabel(names=["c", "a", "b"])})
    tfds.dataset_builders.TfDataBuilder(name=name, version="1.0.0", split_datasets=splits,
                                        features=features, data_dir=data_dir).download_and_prepare()
    return name


def test_tfds_source_interface(tmp_path):
    name = _tiny_tfds(str(tmp_path))
    src = TfdsSource(name, data_dir=str(tmp_path))
    assert src.native_splits == ("train", "test") and src.eval_split == "test"
    assert src.labels() == ["c", "a", "b"]  # tfds class order, not sorted
    records = src.records("train")
    assert [r.id for r in records] == [f"train-{i:06d}" for i in range(6)] and records[0].path is None
    examples = src.load("test")
    assert [e.id for e in examples] == ["test-000000", "test-000001", "test-000002"]
    assert {e.label for e in examples} <= {"c", "a", "b"}
    for e, r in zip(examples, src.records("test")):
        image = src.read(r)
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8  # grey repeated to RGB
        np.testing.assert_array_equal(decode_rgb(e.encoded), image)  # lossless PNG
        assert e.encoded[:8] == b"\x89PNG\r\n\x1a\n" and e.label == r.label
    with pytest.raises(ValueError, match="not 'val'"):
        src.load("val")
    src.validate()


def test_tfds_without_test_split_has_no_eval_split(tmp_path):
    name = _tiny_tfds(str(tmp_path), test=False)
    src = TfdsSource(name, data_dir=str(tmp_path))
    assert src.native_splits == ("train",) and src.eval_split is None


def _refuse_all_but_localhost(monkeypatch):
    """The network as seen offline: only localhost answers, and nothing listens on 127.0.0.1:9."""
    import socket

    real = socket.create_connection

    def connect(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", connect)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("proxy", [None, "http://127.0.0.1:9"])
def test_tfds_download_offline_fails_fast_naming_the_folder(tmp_path, monkeypatch, proxy):
    _refuse_all_but_localhost(monkeypatch)
    if proxy:
        monkeypatch.setenv("https_proxy", proxy)
    start = time.time()
    with pytest.raises(DataError) as err:
        TfdsSource("mnist", data_dir=str(tmp_path / "empty"), download=True)
    assert time.time() - start < 30
    msg = _one_line(err)
    assert f"not prepared in {tmp_path / 'empty'} and downloading it failed (no network: cannot reach " in msg
    assert ("127.0.0.1:9 (the https proxy)" if proxy else "storage.googleapis.com:443") in msg


def test_tfds_download_offline_names_the_default_folder(monkeypatch):
    import os

    from tensorflow_datasets.core import constants

    _refuse_all_but_localhost(monkeypatch)
    with pytest.raises(DataError) as err:
        TfdsSource("mnist", download=True)
    msg = _one_line(err)
    assert f"not prepared in {os.path.expanduser(constants.DATA_DIR)} and downloading it failed" in msg
    assert "~" not in msg


def test_tfds_download_error_is_one_data_error(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from kcv.data.sources import tfds as tfds_source

    def broken(self, *args, **kwargs):
        raise ConnectionError("Max retries exceeded\nand more lines")

    monkeypatch.setattr(tfds_source, "network_problem", lambda: None)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", broken)
    with pytest.raises(DataError) as err:
        TfdsSource("mnist", data_dir=str(tmp_path), download=True)
    assert _one_line(err).endswith(f"not prepared in {tmp_path} and downloading it failed: "
                                   "ConnectionError: Max retries exceeded")
