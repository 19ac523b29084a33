"""Source.load: every image decoded once, the bytes stored chosen by one rule, bad files reported together."""
import dataclasses
import io
import logging
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from kcv.data.errors import DataError
from kcv.data.sources import base
from kcv.data.sources.base import Record, Source, SourceExample
from kcv.data.sources.class_folders import ClassFolderSource


class FileList(Source):
    """The smallest source: a list of files, labelled by their stem; only records() is its own."""

    name = "file_list"

    def __init__(self, paths):
        self._records = [Record(os.path.basename(p), p, os.path.splitext(os.path.basename(p))[0]) for p in paths]

    def records(self, split="train"):
        return list(self._records)


def _decoded(data):
    with Image.open(io.BytesIO(data)) as img:
        return img.format, img.mode, np.asarray(img.convert("RGB"))


def _png16_rgb(path, value):
    """A 16-bit-per-channel RGB PNG (Pillow writes none; it reads them as 8-bit "RGB")."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixels = np.full((4, 4, 3), value, ">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_source_example_defaults_and_is_frozen():
    ex = SourceExample("7", b"x", "cat")
    assert ex.features is None and ex.boxes is None and ex.box_classes is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.label = "dog"


def test_encoded_bytes_rule(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    paths = {}
    for name, save in {
        "rgb_png": lambda p: Image.fromarray(rgb).save(p, format="PNG"),
        "jpeg": lambda p: Image.fromarray(rgb).save(p, format="JPEG", quality=90),
        "grey_png": lambda p: Image.fromarray(rgb[..., 0]).save(p, format="PNG"),
        "palette_png": lambda p: Image.fromarray(rgb).convert("P").save(p, format="PNG"),
        "rgba_png": lambda p: Image.fromarray(np.dstack([rgb, np.full((6, 5), 255, np.uint8)])).save(p, format="PNG"),
        "rgb16_png": lambda p: _png16_rgb(p, 40000),
    }.items():
        paths[name] = str(tmp_path / f"{name}.{'jpg' if name == 'jpeg' else 'png'}")
        save(paths[name])
    src = FileList(paths.values())
    examples = {ex.label: ex for ex in src.load()}
    assert list(examples) == list(paths)  # records() order
    for name in ("rgb_png", "jpeg"):  # 8-bit RGB PNG / JPEG: the file itself, byte for byte
        with open(paths[name], "rb") as f:
            assert examples[name].encoded == f.read()
    for name in ("grey_png", "palette_png", "rgba_png", "rgb16_png"):  # else: a PNG of its RGB decoding
        fmt, mode, pixels = _decoded(examples[name].encoded)
        assert (fmt, mode) == ("PNG", "RGB"), name
        np.testing.assert_array_equal(pixels, src.read(src.records()[list(paths).index(name)]))
    assert (_decoded(examples["grey_png"].encoded)[2] == rgb[..., :1]).all()  # grey repeated over RGB
    assert all(ex.features is None and ex.boxes is None for ex in examples.values())


def test_corrupt_files_are_one_data_error_naming_them_all(tmp_path):
    for i in range(4):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / f"{i}.png")
    (tmp_path / "1.png").write_bytes(b"not an image")
    (tmp_path / "3.png").write_bytes(b"")
    src = FileList(sorted(str(p) for p in tmp_path.iterdir()))
    with pytest.raises(DataError) as err:
        src.load()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("2 images are unreadable")
    assert "1.png: unreadable image" in msg and "3.png: empty file (0 bytes)" in msg
    with pytest.raises(DataError, match="^2 images are unreadable"):
        src.validate()


def test_progress_is_logged_every_so_many_images(tmp_path, monkeypatch, caplog):
    for i in range(5):
        Image.new("RGB", (2, 2)).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(base, "LOG_EVERY", 2)
    with caplog.at_level(logging.INFO, logger=base.__name__):
        FileList(sorted(str(p) for p in tmp_path.iterdir())).load()
    assert [r.getMessage() for r in caplog.records] == ["file_list: read 2/5 train images",
                                                        "file_list: read 4/5 train images"]


def test_eval_split_defaults_to_none_for_file_layouts(tmp_path):
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "cat" / "a.png")
    assert Source.eval_split is None
    assert ClassFolderSource(str(tmp_path)).eval_split is None
    ex = ClassFolderSource(str(tmp_path)).load()
    assert [(e.id, e.label) for e in ex] == [("cat/a", "cat")]
