"""Embedded dog-breed data: drawn "dogs" of a few breeds, written in the Kaggle dog-breed layout.

Each breed is a fixed combination of structure and coat: ear shape (pointed, floppy, round),
coat pattern (plain, spots, stripes, saddle patch), leg length, body build, snout length and
tail (straight, curled, stub). Everything else is random and independent of the breed: image
size (not square), background colours and clutter, the dog's colours, size, position, facing
direction and small proportions jitter. So the breed is learnable from shape and texture, while
a classifier on mean colour stays near chance. Deterministic by seed; ~300 images take a few
seconds.

Layout (as Kaggle's "Dog Breed Identification"): `train/<id>.jpg`, `labels.csv` (id,breed, rows
sorted by id), `test/<id>.jpg`, `sample_submission.csv` (id, then one column per breed in sorted
order, uniform probabilities). Ids are 32 lowercase hex characters like Kaggle's.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os

import numpy as np
from PIL import Image, ImageChops, ImageDraw


@dataclasses.dataclass(frozen=True)
class Breed:
    """What makes a breed: shapes and coat, never colours."""

    name: str
    ears: str  # "pointed" | "floppy" | "round"
    coat: str  # "plain" | "spots" | "stripes" | "patch"
    legs: float  # leg length, in body lengths
    build: float  # body height / body length
    snout: float  # snout length, in body lengths
    tail: str  # "straight" | "curled" | "stub"


# The first `num_breeds` are used; names are breeds of the real competition.
BREEDS: tuple[Breed, ...] = (
    Breed("beagle", ears="floppy", coat="patch", legs=0.24, build=0.34, snout=0.14, tail="straight"),
    Breed("dingo", ears="pointed", coat="plain", legs=0.36, build=0.28, snout=0.20, tail="straight"),
    Breed("dalmatian", ears="floppy", coat="spots", legs=0.36, build=0.32, snout=0.16, tail="straight"),
    Breed("pug", ears="round", coat="plain", legs=0.16, build=0.46, snout=0.04, tail="curled"),
    Breed("siberian_husky", ears="pointed", coat="patch", legs=0.28, build=0.34, snout=0.14, tail="curled"),
    Breed("pembroke", ears="pointed", coat="plain", legs=0.12, build=0.30, snout=0.14, tail="stub"),
    Breed("boxer", ears="round", coat="stripes", legs=0.32, build=0.36, snout=0.06, tail="stub"),
    Breed("whippet", ears="round", coat="plain", legs=0.42, build=0.24, snout=0.22, tail="straight"),
)

_SS = 2  # supersampling factor for anti-aliased edges


def breed_names(num_breeds: int = 5) -> list[str]:
    """Sorted names of the first `num_breeds` breeds (the label vocabulary a source reports)."""
    _check_num_breeds(num_breeds)
    return sorted(b.name for b in BREEDS[:num_breeds])


def _check_num_breeds(num_breeds: int) -> None:
    if not 1 <= num_breeds <= len(BREEDS):
        raise ValueError(f"num_breeds must be in 1..{len(BREEDS)}, got {num_breeds}")


def _colour(rng: np.random.Generator, away_from: np.ndarray | None = None, gap: float = 150.0) -> np.ndarray:
    """A random RGB colour, at least `gap` (L1) from `away_from` so the parts stay visible."""
    while True:
        c = rng.uniform(0, 255, size=3)
        if away_from is None or np.abs(c - away_from).sum() > gap:
            return c


def _background(w: int, h: int, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray]:
    """A (w, h) RGB background: a two-colour vertical gradient with clutter; and its mean colour."""
    top, bottom = _colour(rng), _colour(rng)
    t = np.linspace(0, 1, h)[:, None, None]
    column = np.round((1 - t) * top + t * bottom).astype(np.uint8)  # (h, 1, 3)
    canvas = Image.fromarray(np.ascontiguousarray(np.broadcast_to(column, (h, w, 3))))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 5))):  # bushes and stones, any colour
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.03, 0.1) * w, rng.uniform(0.03, 0.1) * h
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_rgb(_colour(rng)))
    return canvas, (top + bottom) / 2


def _rgb(colour: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(v)) for v in np.clip(colour, 0, 255))


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float) -> None:
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)


def _dog_masks(breed: Breed, w: int, h: int, rng: np.random.Generator) -> dict[str, Image.Image]:
    """(w, h) "L" masks, painted in this order: silhouette, coat pattern, ears, eye+nose. Facing right."""
    jitter = lambda v: v * rng.uniform(0.85, 1.15)  # noqa: E731 - proportions vary a little
    build, legs, snout = jitter(breed.build), jitter(breed.legs), jitter(breed.snout)
    head_r = jitter(0.17)
    # the figure's extent around the body centre, in body lengths (left/right facing right)
    ear_top = {"pointed": 2.0, "round": 1.15, "floppy": 1.0}[breed.ears] * head_r
    tail_back, tail_top = {"straight": (0.8, 0.3), "curled": (0.68, 0.25), "stub": (0.6, 0.0)}[breed.tail]
    left, right = tail_back, 0.5 + head_r + snout
    top = max(0.45 * build + ear_top, 0.15 * build + tail_top)
    bottom = 0.35 * build + legs
    # size: 70-100 % of the largest dog that fits; position: anywhere it fits
    length = rng.uniform(0.7, 1.0) * min(w / (left + right), h / (top + bottom))
    bx = rng.uniform(left * length, w - right * length)
    by = rng.uniform(top * length, h - bottom * length)

    masks = {k: Image.new("L", (w, h), 0) for k in ("body", "torso", "pattern", "ears", "dark")}
    d = {k: ImageDraw.Draw(m) for k, m in masks.items()}
    L = length
    rx, ry = L / 2, build * L / 2
    # legs: two pairs, front and back, slightly apart
    leg_w = 0.08 * L
    for x in (-0.36, -0.26, 0.26, 0.36):
        lx = bx + x * L
        d["body"].rectangle([lx - leg_w / 2, by, lx + leg_w / 2, by + ry * 0.7 + legs * L], fill=255)
    _ellipse(d["body"], bx, by, rx, ry)
    _ellipse(d["torso"], bx, by, rx, ry)
    # head up and forward, snout forward from the head
    hx, hy, hr = bx + 0.5 * L, by - ry * 0.9, head_r * L
    _ellipse(d["body"], hx, hy, hr, hr)
    if snout > 0:
        _ellipse(d["body"], hx + hr * 0.6 + snout * L / 2, hy + 0.25 * hr, hr * 0.4 + snout * L / 2, hr * 0.45)
    nose_x = hx + hr * 0.6 + snout * L + hr * 0.4 - 0.03 * L
    _ellipse(d["dark"], nose_x, hy + 0.2 * hr, 0.035 * L, 0.03 * L)
    _ellipse(d["dark"], hx + 0.35 * hr, hy - 0.25 * hr, 0.03 * L, 0.03 * L)  # eye
    # ears
    ex = hx - 0.3 * hr
    if breed.ears == "pointed":
        d["ears"].polygon([(ex - 0.45 * hr, hy - 0.6 * hr), (ex + 0.35 * hr, hy - 0.75 * hr),
                           (ex - 0.15 * hr, hy - 2.0 * hr)], fill=255)
    elif breed.ears == "floppy":
        _ellipse(d["ears"], ex - 0.15 * hr, hy + 0.45 * hr, 0.35 * hr, 0.95 * hr)
    else:  # round
        _ellipse(d["ears"], ex - 0.1 * hr, hy - 0.85 * hr, 0.33 * hr, 0.3 * hr)
    # tail from the rump
    tx, ty = bx - rx * 0.95, by - ry * 0.3
    tail_w = max(1, int(0.06 * L))
    if breed.tail == "straight":
        d["body"].line([(tx, ty), (tx - 0.3 * L, ty - 0.3 * L)], fill=255, width=tail_w)
    elif breed.tail == "curled":
        r = 0.11 * L
        d["body"].ellipse([tx - 1.6 * r, ty - 2 * r, tx + 0.4 * r, ty], outline=255, width=tail_w)
    else:  # stub
        _ellipse(d["body"], tx - 0.03 * L, ty, 0.06 * L, 0.04 * L)
    # coat pattern, drawn over the whole canvas and clipped to the body below
    if breed.coat == "spots":
        for _ in range(int(rng.integers(12, 20))):
            sx, sy = bx + rng.uniform(-0.5, 0.7) * L, by + rng.uniform(-0.45, 0.35) * L
            _ellipse(d["pattern"], sx, sy, *(rng.uniform(0.045, 0.07, size=2) * L))
    elif breed.coat == "stripes":
        period, phase, slant = rng.uniform(0.12, 0.16) * L, rng.uniform(0, 1), rng.uniform(-0.3, 0.3)
        for k in range(-15, 16):
            x0 = bx + (k + phase) * period
            d["pattern"].polygon([(x0, by - L), (x0 + period / 2, by - L),
                                  (x0 + period / 2 + slant * L, by + L), (x0 + slant * L, by + L)], fill=255)
    elif breed.coat == "patch":  # a saddle on the back
        _ellipse(d["pattern"], bx - 0.05 * L, by - ry * 0.55, rx * 0.7, ry * 0.7)

    body = ImageChops.lighter(masks["body"], masks["ears"])
    clip = masks["torso"] if breed.coat == "patch" else body
    return {"body": body, "pattern": ImageChops.multiply(masks["pattern"], clip),
            "ears": masks["ears"], "dark": ImageChops.multiply(masks["dark"], body)}


def render(breed: Breed, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """One (height, width, 3) uint8 image of a dog of `breed` on a random background."""
    w, h = width * _SS, height * _SS
    canvas, bg_mean = _background(w, h, rng)
    masks = _dog_masks(breed, w, h, rng)
    coat = _colour(rng, away_from=bg_mean)
    marking = _colour(rng, away_from=coat)
    ears = coat * rng.uniform(0.45, 0.65)  # ears a shade darker than the coat, to see their shape
    for key, colour in (("body", coat), ("pattern", marking), ("ears", ears), ("dark", (20, 15, 10))):
        canvas.paste(_rgb(np.asarray(colour)), mask=masks[key])
    if rng.random() < 0.5:
        canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # facing left
    small = np.asarray(canvas.resize((width, height), Image.BOX), dtype=np.float32)
    noisy = small + rng.normal(0, 6, size=(height, width, 3)).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    lo, hi = size_range
    while True:
        w, h = (int(v) for v in rng.integers(lo, hi + 1, size=2))
        if w != h or lo == hi:  # photos are rarely square
            return w, h


def make_dogs(
    n: int, seed: int | np.random.SeedSequence = 0, num_breeds: int = 5, size_range: tuple[int, int] = (120, 200)
) -> tuple[list[np.ndarray], list[str]]:
    """`n` images (each (H, W, 3) uint8, sizes vary) and their breed names, balanced and shuffled."""
    _check_num_breeds(num_breeds)
    if not 32 <= size_range[0] <= size_range[1]:
        raise ValueError(f"size_range must be (lo, hi) with 32 <= lo <= hi, got {size_range}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_breeds)
    images = [render(BREEDS[c], *_size(rng, size_range), rng) for c in labels]
    return images, [BREEDS[c].name for c in labels]


def _encode_jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _ids(n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct 32-hex-character ids."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        i = rng.bytes(16).hex()
        if i not in seen:
            seen.add(i)
            ids.append(i)
    return ids


def write_kaggle_dog(
    root: str,
    n_train: int = 300,
    n_test: int = 30,
    num_breeds: int = 5,
    seed: int = 0,
    size_range: tuple[int, int] = (120, 200),
) -> str:
    """Write the Kaggle dog-breed layout under `root` (see the module docstring). Returns `root`.

    Train and test images come from independent streams of `seed`, so changing `n_test` leaves
    the training set as it was.
    """
    id_seed, train_seed, test_seed = np.random.SeedSequence(seed).spawn(3)
    ids = _ids(n_train + n_test, np.random.default_rng(id_seed))
    train_ids, test_ids = ids[:n_train], ids[n_train:]
    images, breeds = make_dogs(n_train, train_seed, num_breeds, size_range)
    test_images, _ = make_dogs(n_test, test_seed, num_breeds, size_range)
    for folder, folder_ids, folder_images in (("train", train_ids, images), ("test", test_ids, test_images)):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for i, image in zip(folder_ids, folder_images):
            with open(os.path.join(root, folder, f"{i}.jpg"), "wb") as f:
                f.write(_encode_jpeg(image))
    with open(os.path.join(root, "labels.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "breed"])
        writer.writerows(sorted(zip(train_ids, breeds)))
    names = breed_names(num_breeds)
    with open(os.path.join(root, "sample_submission.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *names])
        for i in sorted(test_ids):
            writer.writerow([i, *[repr(1 / num_breeds)] * num_breeds])
    return root
