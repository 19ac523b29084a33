"""In-graph header sizes (PNG, JPEG, GIF, BMP) against PIL, clean failures on truncated or garbage
bytes, guarded_decode, and the issue's done-criterion: a 20000 x 20000 PNG of a few hundred KB is
refused by every exported bytes signature in under a second without its memory being allocated."""
import io
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS, open_checked
from kcv.serving.image_header import MAX_JPEG_SEGMENTS, guarded_decode, image_size_from_header
from tests.conftest import bomb_png

size_fn = tf.function(image_size_from_header, input_signature=[tf.TensorSpec([], tf.string)])


def _encode(fmt: str, size=(37, 21), mode="RGB", **kwargs) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "kcv-test-camera"  # Make
    exif[0x0131] = "x" * 3000  # Software: a long APP1 before the frame header
    return exif.tobytes()


def _top_down_bmp() -> bytes:
    data = bytearray(_encode("BMP", (13, 7)))
    height = struct.unpack_from("<i", data, 22)[0]
    struct.pack_into("<i", data, 22, -height)  # negative height: rows stored top to bottom
    return bytes(data)


CASES = {
    "png_rgb": _encode("PNG"),
    "png_grey_16bit": _encode("PNG", (40, 3), mode="I;16"),
    "png_palette": _encode("PNG", (5, 90), mode="P"),
    "jpeg_baseline": _encode("JPEG", (37, 21)),
    "jpeg_exif_icc_app": _encode("JPEG", (64, 48), exif=_exif(), icc_profile=b"\0" * 5000, dpi=(300, 300)),
    "jpeg_progressive": _encode("JPEG", (300, 200), progressive=True, quality=90),
    "jpeg_grey_restart": _encode("JPEG", (33, 65), mode="L", restart_marker_blocks=1),
    "gif": _encode("GIF", (50, 31), mode="P"),
    "bmp": _encode("BMP", (17, 9)),
    "bmp_top_down": _top_down_bmp(),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_header_size_matches_pil(name):
    data = CASES[name]
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    got = size_fn(tf.constant(data))
    assert [int(v) for v in got] == [height, width]
    assert got[0].dtype == tf.int64
    assert [int(v) for v in image_size_from_header(tf.constant(data))] == [height, width]  # eager too


def _jpeg_size_end(data: bytes) -> int:
    """Offset just past the width field of the first SOFn frame header, walking the segments
    (marker, 2-byte big-endian length) from the SOI: the shortest prefix with a known size."""
    i = 2
    while i + 4 <= len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOF0..SOF15, not DHT/JPG/DAC
            return i + 9  # FF Cn, length (2), precision (1), height (2), width (2)
        i += 2 + length
    raise AssertionError("no frame header")


@pytest.mark.parametrize("name", ["png_rgb", "jpeg_exif_icc_app", "jpeg_progressive", "gif", "bmp"])
def test_truncated_headers_are_unknown(name):
    data = CASES[name]
    # Every prefix that ends before the size fields: (-1, -1), never an error or a hang.
    cut = {"png_rgb": 24, "gif": 10, "bmp": 26}.get(name)
    if cut is None:  # JPEG: the frame header is where its big-endian height/width end
        cut = _jpeg_size_end(data)
        assert cut > 100 if name == "jpeg_exif_icc_app" else cut > 4
        assert [int(v) for v in size_fn(tf.constant(data[:cut]))] != [-1, -1]  # known from there on
    for n in sorted({0, 1, 2, 3, 5, 8, 12, 16, 20, cut - 1}):
        if n < cut:
            assert [int(v) for v in size_fn(tf.constant(data[:n]))] == [-1, -1], n


@pytest.mark.parametrize("data", [
    b"", b"garbage", b"GIF", b"BM\0\0", b"\x89PNG\r\n\x1a\n" + b"\0" * 30,  # PNG signature, no IHDR
    b"\xff\xd8\xff\xda\0\x02",  # scan before any frame header
    b"\xff\xd8\xff\xd9",  # SOI then EOI
    b"\xff\xd8\xff\xe0\0\x01" + b"\0" * 40,  # segment length under 2
    b"\xff\xd8\xff\xe0\0\x10" + b"\0" * 14 + b"\x12\x34",  # garbage where the next marker should be
    struct.pack("<2sI12xii", b"BM", 0, -5, 5),  # negative width
])
def test_garbage_is_unknown(data):
    assert [int(v) for v in size_fn(tf.constant(data))] == [-1, -1]


def test_jpeg_walk_is_bounded():
    for data in (b"\xff\xd8" + b"\xff" * 200000, b"\xff\xd8" + b"\xff\x01" * 100000,
                 b"\xff\xd8" + b"\xff\xfe\x00\x02" * (MAX_JPEG_SEGMENTS + 10) + CASES["jpeg_baseline"][2:]):
        start = time.perf_counter()
        assert [int(v) for v in size_fn(tf.constant(data))] == [-1, -1]
        assert time.perf_counter() - start < 5


def test_guarded_decode_matches_decode_image_and_refuses_before_decoding():
    from kcv.data.schema import decode_image

    decode = tf.function(lambda d: guarded_decode(d, 3, 1000), input_signature=[tf.TensorSpec([], tf.string)])
    small = CASES["png_rgb"]  # 37 x 21 = 777 pixels
    np.testing.assert_array_equal(decode(tf.constant(small)).numpy(), decode_image(tf.constant(small)).numpy())
    assert guarded_decode(tf.constant(CASES["jpeg_baseline"]), 1, 1000).shape == (21, 37, 1)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image is 64x48 = 3072 pixels, over the limit of 1000 \(--max_image_pixels at export\)"):
        decode(tf.constant(CASES["jpeg_exif_icc_app"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a complete PNG, JPEG, GIF or BMP header"):
        decode(tf.constant(b"not an image"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="over the limit of 1000"):  # eager
        guarded_decode(tf.constant(CASES["gif"]), 3, 1000)


def test_bomb_png_is_what_the_issue_describes():
    data = bomb_png()
    assert 200_000 < len(data) < 1_000_000
    with open_checked(data, max_pixels=10**9) as img:  # the header only; PIL's own bomb check off
        assert img.size == (20000, 20000)
    assert [int(v) for v in size_fn(tf.constant(data))] == [20000, 20000]


@pytest.fixture(scope="module")
def exported_models(tmp_path_factory):
    """A tiny simple_cnn classifier and a 64x64 TinySSD, exported with the default limit."""
    import keras

    from kcv.models.classifier import image_classifier
    from kcv.models.tiny_ssd import tiny_ssd
    from kcv.serving.classifier import export_classifier
    from kcv.serving.detector import export_detector

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("bomb")
    classifier = image_classifier("simple_cnn", num_classes=3, input_shape=(16, 16, 3), width=4)
    export_classifier(classifier, str(folder / "classifier"), ["a", "b", "c"], (16, 16))
    export_detector(tiny_ssd(num_classes=1, input_shape=(64, 64, 3), seed=0), str(folder / "detector"),
                    image_size=(64, 64), max_detections=5)
    (folder / "bomb.png").write_bytes(bomb_png())
    return folder


BOMB_PROBE = """
import json, resource, sys, time
sys.modules['keras'] = None
sys.modules['kcv'] = None  # plain TensorFlow serves the model
import tensorflow as tf
folder = sys.argv[1]
data = tf.constant([open(folder + '/bomb.png', 'rb').read()])
report = {}
for name in ('classifier', 'detector'):
    loaded = tf.saved_model.load(folder + '/' + name)
    fn = loaded.signatures['serving_default']
    fn(image_bytes=tf.constant([open(folder + '/small.png', 'rb').read()]))  # warm: trace, kernels
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak KiB so far
    start = time.perf_counter()
    try:
        fn(image_bytes=data)
        message = None
    except tf.errors.InvalidArgumentError as err:
        message = err.message
    seconds = time.perf_counter() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    report[name] = {'seconds': seconds, 'peak_rss_growth_mb': grown / 1024, 'message': message,
                    'limit': int(loaded.max_image_pixels.numpy())}
print(json.dumps(report))
"""


def test_bomb_is_refused_by_every_bytes_signature_fast_and_small(exported_models):
    folder = exported_models
    (folder / "small.png").write_bytes(CASES["png_rgb"])
    out = subprocess.run([sys.executable, "-c", BOMB_PROBE, str(folder)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(report)
    for name in ("classifier", "detector"):
        got = report[name]
        assert got["limit"] == DEFAULT_MAX_IMAGE_PIXELS
        assert got["message"] is not None, f"{name} decoded the bomb"
        assert ("image is 20000x20000 = 400000000 pixels, over the limit of 40000000 (--max_image_pixels at export)"
                in got["message"])
        assert got["seconds"] < 1.0, got
        # A full decode would add ~1.2 GB (20000 x 20000 x 3 bytes) to the peak.
        assert got["peak_rss_growth_mb"] < 100, got
