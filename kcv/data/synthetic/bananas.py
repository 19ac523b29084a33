"""Embedded banana-detection scenes, written in the book's banana-detection layout.

`write_bananas(root)` writes `root/bananas_{train,val}/{images/<i>.png, label.csv}` (see
kcv.data.sources.bananas) from a deterministic procedural generator, so the code path that reads
the real data reads these too: curved yellow banana shapes (stem, dark tip, shading, random size,
bend, rotation and lighting) on varied backgrounds (gradients, smooth noise textures, stripes and
checks, with clutter shapes, some of them yellow, and pixel noise). One banana per image as in the
book by default; `objects_per_image` asks for more (one CSV row per object). An optional
`object_image` (an RGBA cut-out, or an RGB image whose background matches its border) is pasted
instead of the drawn banana. About 5 ms per image.
"""
from __future__ import annotations

import colorsys
import csv
import math
import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from kcv.data.sources.bananas import HEADER

_SS = 4  # supersampling of the drawn banana
MAX_OBJECTS = 8


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV (h in degrees) -> RGB floats 0..255."""
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return np.array([r, g, b], np.float32) * 255.0


def draw_banana(rng: np.random.Generator, length: float) -> Image.Image:
    """An RGBA banana about `length` pixels long, tightly cropped, anti-aliased (drawn at 4x).

    A crescent along a circular arc, thickest in the middle, with a brown-green stem at one end, a
    dark tip at the other, a darker inner side and a thin outline.
    """
    span = math.radians(rng.uniform(60, 130))  # how strongly it bends
    big = length * _SS
    radius = big / span
    thick = big * rng.uniform(0.14, 0.22)
    hue = rng.uniform(44, 56)
    sat = rng.uniform(0.7, 0.95)
    val = rng.uniform(0.85, 1.0)
    body = tuple(int(c) for c in _hsv(hue, sat, val))
    shade = tuple(int(c) for c in _hsv(hue - 6, min(sat + 0.05, 1), val * 0.78))
    edge = tuple(int(c) for c in _hsv(hue - 12, 0.8, val * 0.55))
    stem = tuple(int(c) for c in _hsv(rng.uniform(35, 80), 0.6, 0.45))

    n = 40
    t = np.linspace(0.0, 1.0, n)
    phi = -span / 2 + t * span
    width = thick * np.sin(np.pi * np.clip(t, 0.02, 0.98)) ** 0.6 + thick * 0.08
    outer = np.stack([(radius + width / 2) * np.cos(phi), (radius + width / 2) * np.sin(phi)], 1)
    inner = np.stack([(radius - width / 2) * np.cos(phi), (radius - width / 2) * np.sin(phi)], 1)
    inner_mid = np.stack([(radius - width * 0.05) * np.cos(phi), (radius - width * 0.05) * np.sin(phi)], 1)
    # Stem: a short thick segment continuing the arc beyond t = 0.
    stem_len = span * rng.uniform(0.08, 0.14)
    sphi = np.linspace(-span / 2 - stem_len, -span / 2 + 0.02, 6)
    sw = thick * 0.22
    stem_pts = np.concatenate([
        np.stack([(radius + sw / 2) * np.cos(sphi), (radius + sw / 2) * np.sin(sphi)], 1),
        np.stack([(radius - sw / 2) * np.cos(sphi[::-1]), (radius - sw / 2) * np.sin(sphi[::-1])], 1),
    ])
    tip_c = np.array([radius * math.cos(span / 2), radius * math.sin(span / 2)])

    # Rotate and mirror at random, then shift into a canvas with margin.
    angle = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    if rng.random() < 0.5:
        rot = rot @ np.diag([1.0, -1.0])
    shapes = [p @ rot.T for p in (outer, inner, inner_mid, stem_pts, tip_c[None])]
    allpts = np.concatenate(shapes[:4])
    lo = allpts.min(0) - 2 * _SS
    hi = allpts.max(0) + 2 * _SS
    shapes = [p - lo for p in shapes]
    outer, inner, inner_mid, stem_pts, tip = shapes
    size = tuple(int(math.ceil(v)) for v in hi - lo)
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    poly = lambda a: [tuple(p) for p in a]  # noqa: E731
    draw.polygon(poly(stem_pts), fill=stem + (255,))
    draw.polygon(poly(np.concatenate([outer, inner[::-1]])), fill=body + (255,), outline=edge + (255,))
    draw.polygon(poly(np.concatenate([inner_mid, inner[::-1]])), fill=shade + (255,))
    draw.line(poly(np.concatenate([outer, inner[::-1], outer[:1]])), fill=edge + (255,), width=max(1, _SS))
    r = thick * 0.12
    draw.ellipse([tip[0, 0] - r, tip[0, 1] - r, tip[0, 0] + r, tip[0, 1] + r], fill=(60, 40, 20, 255))
    out = img.resize((max(1, size[0] // _SS), max(1, size[1] // _SS)), Image.LANCZOS)
    # Lighting: scale RGB, keep alpha.
    arr = np.asarray(out).astype(np.float64)
    arr[..., :3] *= rng.uniform(0.75, 1.1)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")


def _cutout(path: str) -> Image.Image:
    """Load an object image as RGBA: its own alpha, or opaque where it differs from its border colour."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA") or "transparency" in img.info:
            return img.convert("RGBA")
        rgb = np.asarray(img.convert("RGB")).astype(np.float64)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    dist = np.linalg.norm(rgb - np.median(border, axis=0), axis=-1)
    alpha = (dist > 40).astype(np.uint8) * 255
    return Image.fromarray(np.dstack([rgb.astype(np.uint8), alpha]), "RGBA")


def _object(rng: np.random.Generator, length: float, sprite: Image.Image | None) -> Image.Image:
    if sprite is None:
        return draw_banana(rng, length)
    scale = length / max(sprite.size)
    img = sprite.resize((max(1, round(sprite.size[0] * scale)), max(1, round(sprite.size[1] * scale))), Image.LANCZOS)
    return img.rotate(rng.uniform(0, 360), resample=Image.BICUBIC, expand=True)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8 background: gradient, smooth noise, stripes or checks, then clutter."""
    coord = (np.arange(size, dtype=np.float32) / size)
    xx, yy = coord[None, :], coord[:, None]  # broadcast to (size, size)
    kind = rng.integers(4)
    c1, c2 = (_hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.95)) for _ in range(2))
    if kind == 0:  # linear gradient
        a = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(a) + yy * math.sin(a)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 1:  # smooth noise texture between two colours
        cells = int(rng.integers(3, 17))
        grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
        t = np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC)).astype(np.float32) / 255
    elif kind == 2:  # stripes at an angle
        a = rng.uniform(0, math.pi)
        period = rng.uniform(0.05, 0.3)
        t = (np.sin(2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / period) > 0).astype(np.float32)
    else:  # checks
        period = rng.uniform(0.06, 0.25)
        t = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
    bg = c1 + (c2 - c1) * t[..., None]
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    if kind >= 2:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    # Clutter: ellipses, rectangles, polygons and lines, sometimes yellow so colour alone is not enough.
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(2, 12))):
        hue = rng.uniform(40, 60) if rng.random() < 0.2 else rng.uniform(0, 360)
        colour = tuple(int(c) for c in _hsv(hue, rng.uniform(0.2, 0.95), rng.uniform(0.2, 1.0)))
        fill = colour + (int(rng.integers(120, 256)),)
        cx, cy = rng.uniform(-0.1, 1.1, 2) * size
        rx, ry = rng.uniform(0.03, 0.25, 2) * size
        shape = rng.integers(4)
        if shape == 0:
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
        elif shape == 1:
            draw.rectangle([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
        elif shape == 2:
            k = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * math.pi, k))
            draw.polygon([(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in ang], fill=fill)
        else:
            draw.line([(cx - rx, cy - ry), (cx + rx, cy + ry)], fill=fill, width=int(rng.integers(2, 9)))
    return np.asarray(Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB"))


def render_scene(rng: np.random.Generator, size: int = 256, num_objects: int = 1,
                 sprite: Image.Image | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scene: image uint8 (size, size, 3) and pixel boxes int64 (N, 4) xyxy (x2, y2 exclusive).

    Objects are 14-42% of the image side long, fully inside, and overlap earlier ones by at most
    IoU 0.2 (placement is retried; an object that finds no place is left out).
    """
    canvas = Image.fromarray(_background(rng, size))
    placed: list[tuple[int, int, int, int]] = []
    for _ in range(num_objects):
        obj = _object(rng, rng.uniform(0.14, 0.42) * size, sprite)
        alpha = np.asarray(obj)[..., 3]
        ys, xs = np.nonzero(alpha >= 128)
        if len(xs) == 0 or obj.size[0] >= size or obj.size[1] >= size:
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1  # box of the visible object
        for _try in range(50):
            ox = int(rng.integers(-x0, size - x1 + 1))
            oy = int(rng.integers(-y0, size - y1 + 1))
            box = (ox + x0, oy + y0, ox + x1, oy + y1)
            if all(_iou(box, other) <= 0.2 for other in placed):
                canvas.paste(obj, (ox, oy), obj)
                placed.append(box)
                break
    image = np.asarray(canvas).astype(np.float32)
    image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0, 6)  # sensor noise
    return np.clip(np.round(image), 0, 255).astype(np.uint8), np.array(placed, np.int64).reshape(-1, 4)


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _object_counts(objects_per_image: int | Sequence[int]) -> tuple[int, int]:
    lo, hi = (objects_per_image, objects_per_image) if isinstance(objects_per_image, (int, np.integer)) \
        else tuple(objects_per_image)
    if not 1 <= int(lo) <= int(hi) <= MAX_OBJECTS:
        raise ValueError(f"objects_per_image must be an int or (min, max) within 1..{MAX_OBJECTS}, "
                         f"got {objects_per_image!r}")
    return int(lo), int(hi)


def write_bananas(root: str, num_train: int = 1000, num_val: int = 100,
                  objects_per_image: int | Sequence[int] = 1, image_size: int = 256, seed: int = 0,
                  object_image: str | None = None) -> str:
    """Write `root/bananas_{train,val}/{images/<i>.png, label.csv}`; return `root`.

    objects_per_image: an int (every image) or (min, max) drawn per image; the book has 1. Every
    object is class 0 ("banana"), one CSV row each. Deterministic in (seed, split, index).
    """
    lo, hi = _object_counts(objects_per_image)
    if num_train < 1 or num_val < 0:
        raise ValueError(f"write_bananas: need num_train >= 1 and num_val >= 0, got {num_train}, {num_val}")
    if image_size < 64:
        raise ValueError(f"write_bananas: image_size must be >= 64, got {image_size}")
    sprite = _cutout(object_image) if object_image else None
    for split_id, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        folder = os.path.join(root, f"bananas_{split}")
        os.makedirs(os.path.join(folder, "images"), exist_ok=True)
        rows = []
        for i in range(count):
            rng = np.random.default_rng([seed, split_id, i])
            n = int(rng.integers(lo, hi + 1))
            image, boxes = render_scene(rng, image_size, n, sprite)
            name = f"{i}.png"
            # Fast PNG compression: the images are noisy, so level 6 only costs time.
            Image.fromarray(image).save(os.path.join(folder, "images", name), compress_level=1)
            rows.extend([name, 0, *map(int, box)] for box in boxes)
        tmp = os.path.join(folder, ".label.csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(HEADER)
            writer.writerows(rows)
        os.replace(tmp, os.path.join(folder, "label.csv"))
    return root
