"""Embedded sprite generator: small cartoon creatures on white, in the sprite collection's layout.

The book's DCGAN trains on Pokemon sprites (`pokemon/<type>/<name>.jpg`, 18 type folders, white
background). `write_sprites(root)` writes `root/<type>/<name>.png` the same way, so the code path
that reads a real collection reads these too. Each creature is a coloured blob body with an outline,
optional head, belly, eyes, ears or horns, feet, arms, tail, wings and spots; colours follow the
type folder (fire is red-orange, water blue, grass green, ...) with jitter, and size, position,
rotation and facing vary. Drawn at 4x and downsampled, so edges are anti-aliased. Deterministic in
(seed, index); about a millisecond per 64x64 image.
"""
from __future__ import annotations

import colorsys
import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

# The 18 type folders of the real collection, with (hue in degrees, saturation, value) of the
# creatures' main colour.
TYPES: dict[str, tuple[float, float, float]] = {
    "bug": (75, 0.65, 0.75), "dark": (25, 0.35, 0.35), "dragon": (250, 0.55, 0.7),
    "electric": (52, 0.85, 0.97), "fairy": (335, 0.35, 0.98), "fighting": (12, 0.6, 0.65),
    "fire": (18, 0.85, 0.95), "flying": (205, 0.4, 0.92), "ghost": (275, 0.5, 0.55),
    "grass": (115, 0.6, 0.7), "ground": (35, 0.5, 0.75), "ice": (185, 0.35, 0.95),
    "normal": (40, 0.2, 0.9), "poison": (290, 0.55, 0.7), "psychic": (320, 0.6, 0.9),
    "rock": (30, 0.25, 0.6), "steel": (210, 0.1, 0.75), "water": (218, 0.65, 0.9),
}
_WINGED = {"bug", "dragon", "flying", "fairy"}
_SYLLABLES = ("ba", "bul", "char", "da", "dra", "ee", "fla", "ga", "gro", "ka", "ki", "lu", "ma",
              "me", "mon", "na", "no", "pi", "pok", "ra", "ri", "sa", "sha", "so", "ta", "to",
              "tur", "va", "vee", "wo", "xa", "zu", "zap", "quil", "lix", "rex", "bo", "chu")
_SCALE = 4  # supersampling factor


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float,
             fill: tuple, outline: tuple | None = None, width: int = 0) -> None:
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill, outline=outline, width=width)


def render_sprite(kind: str, seed: int, size: int = 64) -> np.ndarray:
    """One creature of type `kind`: uint8 (size, size, 3) on a white background, deterministic in seed."""
    if kind not in TYPES:
        raise ValueError(f"render_sprite: unknown type {kind!r}; known: {', '.join(TYPES)}")
    if size < 8:
        raise ValueError(f"render_sprite: size must be >= 8, got {size}")
    rng = np.random.default_rng(seed)
    s = size * _SCALE
    img = Image.new("RGB", (s, s), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    hue, sat, val = TYPES[kind]
    hue += rng.normal(0, 12)
    sat += rng.normal(0, 0.08)
    val += rng.normal(0, 0.06)
    body = _rgb(hue, sat, val)
    dark = _rgb(hue, sat * 0.9, val * 0.35)
    light = _rgb(hue + rng.normal(0, 10), sat * 0.35, min(val * 1.15, 1.0))
    accent = _rgb(hue + rng.choice([-150, 150, 180, 40]), max(sat, 0.5), 0.85)
    line = max(1, s // 48)

    scale = rng.uniform(0.7, 1.1)  # creature size relative to the frame
    cx = s / 2 + rng.normal(0, s * 0.04)
    cy = s * 0.58 + rng.normal(0, s * 0.04)
    rx = s * scale * rng.uniform(0.17, 0.27)
    ry = s * scale * rng.uniform(0.16, 0.26)
    facing = rng.choice([-1.0, 1.0])

    if kind in _WINGED and rng.random() < 0.8:  # wings behind the body
        for side in (-1, 1):
            _ellipse(draw, cx + side * rx * 0.95, cy - ry * 0.55, rx * 0.6, ry * 0.85,
                     light if rng.random() < 0.5 else accent, dark, line)
    if rng.random() < 0.6:  # tail: a zigzag for electric/fire, a curl otherwise
        tx = cx - facing * rx * 0.9
        pts = [(tx, cy + ry * 0.3)]
        for k in range(1, 4):
            pts.append((tx - facing * rx * 0.35 * k, cy - ry * (0.15 + 0.35 * k) * (1 if k % 2 else 0.6)))
        draw.line(pts, fill=dark, width=line * 5, joint="curve")
        draw.line(pts, fill=accent if kind in ("fire", "electric") else body, width=line * 3, joint="curve")
    for side in (-1, 1):  # feet
        _ellipse(draw, cx + side * rx * 0.55, cy + ry * 0.92, rx * 0.3, ry * 0.18, body, dark, line)
    _ellipse(draw, cx, cy, rx, ry, body, dark, line)  # body
    if rng.random() < 0.6:  # belly
        _ellipse(draw, cx + facing * rx * 0.1, cy + ry * 0.25, rx * 0.55, ry * 0.55, light)
    if rng.random() < 0.7:  # arms
        for side in (-1, 1):
            _ellipse(draw, cx + side * rx * 0.95, cy + ry * 0.1, rx * 0.18, ry * 0.28, body, dark, line)
    if rng.random() < 0.35:  # spots
        for _ in range(int(rng.integers(2, 5))):
            _ellipse(draw, cx + rng.uniform(-0.6, 0.6) * rx, cy + rng.uniform(-0.5, 0.3) * ry,
                     rx * 0.1, rx * 0.1, accent)

    has_head = rng.random() < 0.7
    if has_head:
        hr = rx * rng.uniform(0.6, 0.85)
        hx, hy = cx + facing * rx * 0.25, cy - ry - hr * 0.55
    else:  # blob creature: the face sits on the body
        hr, hx, hy = rx * 0.8, cx + facing * rx * 0.1, cy - ry * 0.2
    if rng.random() < 0.65:  # ears or horns, drawn before the head so the head overlaps them
        ear = light if rng.random() < 0.3 else body
        length = hr * rng.uniform(0.7, 1.4)
        for side in (-1, 1):
            bx = hx + side * hr * 0.55
            tip = (bx + side * hr * rng.uniform(0.1, 0.5), hy - hr * 0.5 - length)
            draw.polygon([(bx - hr * 0.3, hy - hr * 0.5), (bx + hr * 0.3, hy - hr * 0.5), tip],
                         fill=ear, outline=dark, width=line)
    if has_head:
        _ellipse(draw, hx, hy, hr, hr * rng.uniform(0.85, 1.0), body, dark, line)
    er = hr * rng.uniform(0.14, 0.22)
    for side in (-1, 1):  # eyes look the way the creature faces
        ex, ey = hx + side * hr * 0.38 + facing * hr * 0.12, hy - hr * 0.05
        _ellipse(draw, ex, ey, er, er * 1.2, (255, 255, 255), dark, line)
        _ellipse(draw, ex + facing * er * 0.35, ey, er * 0.5, er * 0.65, (20, 20, 20))
    if rng.random() < 0.7:  # mouth
        mx, my = hx + facing * hr * 0.12, hy + hr * 0.42
        draw.arc([mx - hr * 0.25, my - hr * 0.15, mx + hr * 0.25, my + hr * 0.15], 10, 170, fill=dark, width=line)

    angle = rng.normal(0, 10)
    img = img.rotate(angle, resample=Image.BICUBIC, fillcolor=(255, 255, 255))
    if facing < 0 and rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(img.resize((size, size), Image.LANCZOS), dtype=np.uint8)


def write_sprites(root: str, count: int = 1024, seed: int = 0, size: int = 64,
                  types: Sequence[str] | None = None) -> list[str]:
    """Write `count` sprites as `root/<type>/<name>.png` (size x size RGB); return the paths.

    Types take turns (index % number of types) so every folder gets count / 18 images; names are
    made of syllables, unique within the collection. The same arguments give the same files.
    """
    if count < 1:
        raise ValueError(f"write_sprites: count must be >= 1, got {count}")
    kinds = list(types) if types is not None else list(TYPES)
    unknown = [k for k in kinds if k not in TYPES]
    if unknown or not kinds:
        raise ValueError(f"write_sprites: unknown types {unknown}; known: {', '.join(TYPES)}")
    names_rng = np.random.default_rng([seed, 1])
    used: set[str] = set()
    paths = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        name = _name(names_rng)
        while name in used:  # keep names unique across folders, as the real collection's are
            name += str(names_rng.integers(10))
        used.add(name)
        folder = os.path.join(root, kind)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{name}.png")
        Image.fromarray(render_sprite(kind, seed=hash_seed(seed, index), size=size)).save(path)
        paths.append(path)
    return paths


def hash_seed(seed: int, index: int) -> int:
    """A per-image seed from (collection seed, index), independent of count and types."""
    return int(np.random.default_rng([seed, index, 7]).integers(2**31))
