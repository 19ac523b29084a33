"""Reading images from disk as RGB uint8, whatever mode they were saved in."""
from __future__ import annotations

import io
import threading

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: the one default for the largest image (width x height) read or served: ExampleGen, kcv-predict
#: and the exported bytes signatures (kcv.serving.image_header) all refuse bigger ones from the header
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
_PIL_LIMIT_LOCK = threading.Lock()


class ImageTooLargeError(ValueError):
    """An image whose header announces more pixels than the limit; raised before decoding."""


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert any PIL image (L, LA, P, RGBA, I;16, I, F, CMYK...) to an (H, W, 3) uint8 array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit / 32-bit integer grey: scale the full range down to 8 bits rather than clip.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float64), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparency onto white, as viewers show it.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_rgb(path: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file fully and return it as (H, W, 3) uint8.

    Raises ValueError (one line) for empty, truncated or unreadable files, ImageTooLargeError (a
    ValueError) for images over `max_pixels`.
    """
    with open(path, "rb") as f:
        data = f.read()
    return decode_rgb(data, name=path, max_pixels=max_pixels)


def open_checked(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """The image opened from its header only (not decoded yet); the caller closes it.

    Raises ImageTooLargeError "<name>: image is WxH = N pixels, over the limit of M
    (--max_image_pixels)" when width * height > max_pixels; PIL's errors for unreadable bytes pass.
    """
    # PIL's own bomb check raises at open past 2 x Image.MAX_IMAGE_PIXELS, before the size is
    # known, with its own message; ours replaces it, so it is off for this header read only
    # (a lock: the setting is process-wide). PIL still checks GIF frames while decoding.
    with _PIL_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise ImageTooLargeError(f"{name}: image is {width}x{height} = {width * height} pixels, "
                                 f"over the limit of {max_pixels} (--max_image_pixels)")
    return img


def decode_rgb(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode encoded image bytes fully to (H, W, 3) uint8.

    ValueError if empty or corrupt; ImageTooLargeError (a ValueError), from the header and before
    any decoding, if width * height > max_pixels.
    """
    if not data:
        raise ValueError(f"{name}: empty file (0 bytes)")
    try:
        img = open_checked(data, name, max_pixels)
    except ImageTooLargeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{name}: unreadable image ({err})") from None
    try:
        with img:
            img.load()  # forces a full decode, so truncated files fail here, not mid-epoch
            return to_rgb_uint8(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{name}: unreadable image ({err})") from None


def encode_png(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) or (H, W) uint8 array as PNG bytes (lossless, deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
