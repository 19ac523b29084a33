"""Reading images from disk as RGB uint8, whatever mode they were saved in."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


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


def load_rgb(path: str) -> np.ndarray:
    """Read an image file fully and return it as (H, W, 3) uint8.

    Raises ValueError (one line) for empty, truncated or unreadable files.
    """
    with open(path, "rb") as f:
        data = f.read()
    return decode_rgb(data, name=path)


def decode_rgb(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes fully to (H, W, 3) uint8; ValueError if empty or corrupt."""
    if not data:
        raise ValueError(f"{name}: empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # forces a full decode, so truncated files fail here, not mid-epoch
            return to_rgb_uint8(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{name}: unreadable image ({err})") from None


def encode_png(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) or (H, W) uint8 array as PNG bytes (lossless, deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
