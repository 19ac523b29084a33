"""decode_rgb / load_rgb / Source.load refuse over-limit images from the header, with our message
(never PIL's DecompressionBomb one), and leave PIL's process-wide limit as it was."""
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from kcv.data.errors import DataError
from kcv.data.images import (DEFAULT_MAX_IMAGE_PIXELS, ImageTooLargeError, decode_rgb, encode_png, load_rgb,
                             open_checked)
from kcv.data.sources import ClassFolderSource, encoded_image
from tests.conftest import bomb_png


BIG = bomb_png(20000, 20000 // 8)  # 50M pixels: over the default, under PIL's own error threshold
HUGE = bomb_png(20000, 20000)  # 400M pixels: past PIL's DecompressionBombError threshold


def test_default_limit():
    assert DEFAULT_MAX_IMAGE_PIXELS == 40_000_000


@pytest.mark.parametrize("data, size", [(BIG, "20000x2500 = 50000000"), (HUGE, "20000x20000 = 400000000")])
def test_decode_rgb_refuses_from_the_header_with_our_message(data, size):
    saved = Image.MAX_IMAGE_PIXELS
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(ImageTooLargeError) as err:
            decode_rgb(data, name="bomb.png")
    assert time.perf_counter() - start < 1.0  # the header only: a decode takes seconds
    assert str(err.value) == (f"bomb.png: image is {size} pixels, over the limit of 40000000 (--max_image_pixels)")
    assert isinstance(err.value, ValueError)  # callers catching ValueError still catch it
    assert Image.MAX_IMAGE_PIXELS == saved


def test_limit_is_a_parameter_and_load_rgb_passes_it(tmp_path):
    image = np.arange(10 * 11 * 3, dtype=np.uint8).reshape(10, 11, 3)
    path = tmp_path / "a.png"
    path.write_bytes(encode_png(image))
    np.testing.assert_array_equal(load_rgb(str(path)), image)
    np.testing.assert_array_equal(load_rgb(str(path), max_pixels=110), image)
    with pytest.raises(ValueError, match=rf"^{path}: image is 11x10 = 110 pixels, over the limit of 109 "):
        load_rgb(str(path), max_pixels=109)
    with open_checked(encode_png(image), max_pixels=110) as img:
        assert img.size == (11, 10)


def test_corrupt_and_empty_messages_unchanged():
    with pytest.raises(ValueError, match="x.png: empty file"):
        decode_rgb(b"", name="x.png")
    with pytest.raises(ValueError, match="x.png: unreadable image"):
        decode_rgb(b"not an image", name="x.png")
    with pytest.raises(ValueError, match="x.png: unreadable image"):
        noisy = encode_png(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8))
        decode_rgb(noisy[:len(noisy) // 2], name="x.png")  # truncated


def test_encoded_image_and_source_load_report_over_limit_files(tmp_path):
    with pytest.raises(ImageTooLargeError, match="big.png: image is 20000x2500"):
        encoded_image(BIG, "big.png")
    assert encoded_image(BIG, "big.png", max_pixels=50_000_000)[:8] == b"\x89PNG\r\n\x1a\n"
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(2):
            (tmp_path / label / f"{i}.png").write_bytes(encode_png(np.full((4, 5, 3), i, np.uint8)))
    (tmp_path / "dog" / "big.png").write_bytes(HUGE)
    open(tmp_path / "cat" / "empty.png", "wb").close()
    source = ClassFolderSource(str(tmp_path))
    with pytest.raises(DataError) as err:
        source.load("train")
    message = str(err.value)
    assert message.startswith("2 images are unreadable")
    assert ("big.png: image is 20000x20000 = 400000000 pixels, over the limit of 40000000 (--max_image_pixels)"
            in message)
    assert "empty.png: empty file" in message
    (tmp_path / "cat" / "empty.png").unlink()
    (tmp_path / "dog" / "big.png").write_bytes(encode_png(np.zeros((4, 6, 3), np.uint8)))
    assert len(ClassFolderSource(str(tmp_path)).load("train")) == 5
    with pytest.raises(DataError,
                       match="1 images are unreadable.*"
                       "big.png: image is 6x4 = 24 pixels, over the limit of 20 "):
        ClassFolderSource(str(tmp_path)).load("train", max_image_pixels=20)
