"""An image's height and width read in-graph from its encoded header, before any decoder runs.

TF Serving answers whoever reaches its port, and TensorFlow's decoders allocate whatever a header
announces (a 379 KiB PNG can announce 20000 x 20000). `guarded_decode` reads the size first and
refuses, as InvalidArgumentError, an image over the pixel limit or one whose header it cannot
read, so nothing is allocated for it. Pure TensorFlow ops: a SavedModel using them loads and runs
with plain TensorFlow.

Header layouts read (offsets in bytes):
  PNG   signature, IHDR: width, height int32 big-endian at 16..24
  JPEG  marker segments from SOI to the first SOFn (n != 4, 8, 12): height, width uint16
        big-endian after the precision byte
  GIF   logical screen width, height uint16 little-endian at 6..10
  BMP   width, height int32 little-endian at 18..26 (height < 0 is a top-down bitmap)
Anything else (WebP, JPEG XL, garbage) is "unknown" and refused by `guarded_decode` (fail closed).
"""
from __future__ import annotations

import tensorflow as tf

from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS
from kcv.data.schema import decode_image

# A JPEG has a handful of segments before its frame header; this bounds the walk so a file of
# fill bytes or tiny segments costs at most this many loop steps, then is refused.
MAX_JPEG_SEGMENTS = 4096
UNREADABLE_MESSAGE = ("image header is not a complete PNG, JPEG, GIF or BMP header "
                      "(refused before decoding)")


def _substr(data: tf.Tensor, size: tf.Tensor, pos: int | tf.Tensor, n: int) -> tf.Tensor:
    """data[pos:pos+n] as a string, "" past the end (tf.strings.substr fails for pos > size)."""
    return tf.strings.substr(data, tf.minimum(pos, size), n)


def _read(data: tf.Tensor, size: tf.Tensor, pos: int | tf.Tensor, count: int, dtype: tf.DType,
          little_endian: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """(`count` values of `dtype` at byte `pos`, zero-padded past the end: [count]; all present: bool)."""
    nbytes = count * dtype.size
    values = tf.io.decode_raw(_substr(data, size, pos, nbytes), dtype, little_endian=little_endian,
                              fixed_length=nbytes)
    return values, pos + nbytes <= size


def _size_or_unknown(ok: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    ok = ok & (height >= 0) & (width >= 0)
    return tf.where(ok, height, -1), tf.where(ok, width, -1)


def _png(data: tf.Tensor, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    wh, ok = _read(data, size, 16, 2, tf.int32, little_endian=False)
    return _size_or_unknown(ok & (_substr(data, size, 12, 4) == b"IHDR"), wh[1], wh[0])


def _gif(data: tf.Tensor, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    wh, ok = _read(data, size, 6, 2, tf.uint16, little_endian=True)
    return _size_or_unknown(ok, wh[1], wh[0])


def _bmp(data: tf.Tensor, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    wh, ok = _read(data, size, 18, 2, tf.int32, little_endian=True)
    # int64 before abs: abs(int32 min) overflows.
    return _size_or_unknown(ok, tf.abs(tf.cast(wh[1], tf.int64)), wh[0])


def _jpeg(data: tf.Tensor, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Walk the segments after SOI: each is 0xFF, a marker byte, then (most) a big-endian length."""
    minus_one = tf.constant(-1, tf.int64)

    def body(pos, height, width, done):
        head, ok = _read(data, size, pos, 2, tf.uint8, little_endian=True)
        marker = tf.cast(head[1], tf.int32)
        ok = ok & (head[0] == 0xFF)
        hw, hw_ok = _read(data, size, pos + 5, 2, tf.uint16, little_endian=False)  # SOFn: FF n len(2) P h w
        length, length_ok = _read(data, size, pos + 2, 1, tf.uint16, little_endian=False)
        length = tf.cast(length[0], tf.int32)
        is_sof = (marker >= 0xC0) & (marker <= 0xCF) & (marker != 0xC4) & (marker != 0xC8) & (marker != 0xCC)
        fill = marker == 0xFF  # any number of 0xFF may pad before a marker
        standalone = (marker == 0x01) | ((marker >= 0xD0) & (marker <= 0xD7))  # TEM, RSTn: no length
        segment = ~is_sof & ~fill & ~standalone
        # SOI again, EOI, or the scan starting before a frame header: not a decodable JPEG.
        bad = (~ok | (marker == 0x00) | (marker == 0xD8) | (marker == 0xD9) | (marker == 0xDA)
               | (is_sof & ~hw_ok) | (segment & (~length_ok | (length < 2))))
        found = ~bad & is_sof
        step = tf.where(fill, 1, tf.where(standalone, 2, 2 + length))
        height = tf.where(found, tf.cast(hw[0], tf.int64), minus_one)
        width = tf.where(found, tf.cast(hw[1], tf.int64), minus_one)
        return pos + step, height, width, bad | found

    _, height, width, done = tf.while_loop(
        lambda pos, height, width, done: ~done, body,
        (tf.constant(2, tf.int32), minus_one, minus_one, tf.constant(False)),
        maximum_iterations=MAX_JPEG_SEGMENTS)
    # Stopped by the bound without a frame header: unknown.
    return _size_or_unknown(done, height, width)


def image_size_from_header(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Encoded image scalar tf.string -> (height, width) scalar int64 read from the header only.

    (-1, -1) when the format is not PNG/JPEG/GIF/BMP or its header is truncated or malformed;
    never raises for any bytes and never loops more than MAX_JPEG_SEGMENTS steps.
    """
    data = tf.convert_to_tensor(data, tf.string)
    size = tf.strings.length(data)
    prefix = tf.strings.substr(data, 0, 8)
    unknown = lambda: (tf.constant(-1, tf.int64), tf.constant(-1, tf.int64))  # noqa: E731
    return tf.case([
        (tf.equal(prefix, b"\x89PNG\r\n\x1a\n"), lambda: _png(data, size)),
        (tf.equal(tf.strings.substr(prefix, 0, 3), b"\xff\xd8\xff"), lambda: _jpeg(data, size)),
        (tf.equal(tf.strings.substr(prefix, 0, 4), b"GIF8"), lambda: _gif(data, size)),
        (tf.equal(tf.strings.substr(prefix, 0, 2), b"BM"), lambda: _bmp(data, size)),
    ], default=unknown, exclusive=False)


def guarded_decode(data: tf.Tensor, channels: int = 3,
                   max_pixels: int | tf.Tensor | tf.Variable = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Tensor:
    """Encoded image scalar tf.string -> (H, W, channels) uint8, as `kcv.data.schema.decode_image`.

    Raises InvalidArgumentError before the decoder runs when the header is unreadable, or when
    width * height > max_pixels: "image is WxH = N pixels, over the limit of M (--max_image_pixels
    at export)".
    """
    height, width = image_size_from_header(data)
    pixels = height * width
    limit = tf.cast(max_pixels, tf.int64)
    readable = tf.debugging.Assert(height >= 0, [UNREADABLE_MESSAGE])
    message = tf.strings.format("image is {}x{} = {} pixels, over the limit of {} (--max_image_pixels at export)",
                                (width, height, pixels, limit))
    small = tf.debugging.Assert(pixels <= limit, [message])
    with tf.control_dependencies([readable, small]):  # the decoder runs only after both checks pass
        return decode_image(data, channels)
