"""Test tiers: the default run skips `large` tests unless --run_large or `-m large` asks for them."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run_large", action="store_true", default=False, help="also run tests marked large")


def pytest_collection_modifyitems(config, items):
    markexpr = config.getoption("-m") or ""
    if config.getoption("--run_large") or "large" in markexpr.replace("not large", ""):
        return
    skip = pytest.mark.skip(reason="large: run with --run_large or -m large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 8-bit grey PNG of zero rows: width x height pixels in a few hundred KB (a decompression bomb).

    Tests import it: `from tests.conftest import bomb_png`.
    """
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    rows = b"\0" * ((width + 1) * 1000)  # filter byte 0 + width grey bytes, 1000 rows at a time
    idat = b"".join(packer.compress(rows) for _ in range(height // 1000))
    idat += packer.compress(b"\0" * ((width + 1) * (height % 1000))) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
