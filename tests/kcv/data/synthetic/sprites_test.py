"""Embedded sprite generator: layout, determinism, white background, variety, type colours."""
import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from kcv.data.synthetic import sprites


def _load(paths):
    return np.stack([np.asarray(Image.open(p)) for p in paths])


def test_layout_like_the_real_collection(tmp_path):
    paths = sprites.write_sprites(str(tmp_path), count=36, seed=0)
    assert len(paths) == 36
    folders = sorted(os.listdir(tmp_path))
    assert folders == sorted(sprites.TYPES) and len(folders) == 18  # root/<type>/<name>.png
    assert all(len(os.listdir(tmp_path / f)) == 2 for f in folders)  # types take turns: 36 / 18
    names = [os.path.basename(p) for p in paths]
    assert len(set(names)) == 36 and all(n.endswith(".png") and n[:-4].isalpha() for n in names)
    for p in paths:
        rel = os.path.relpath(p, tmp_path).split(os.sep)
        assert len(rel) == 2 and rel[0] in sprites.TYPES
    with Image.open(paths[0]) as im:
        assert im.mode == "RGB" and im.size == (64, 64)


def test_deterministic_in_seed(tmp_path):
    digest = lambda paths: [hashlib.sha1(open(p, "rb").read()).hexdigest() for p in paths]
    a = sprites.write_sprites(str(tmp_path / "a"), count=5, seed=1)
    b = sprites.write_sprites(str(tmp_path / "b"), count=5, seed=1)
    c = sprites.write_sprites(str(tmp_path / "c"), count=5, seed=2)
    assert [os.path.relpath(p, tmp_path / "a") for p in a] == [os.path.relpath(p, tmp_path / "b") for p in b]
    assert digest(a) == digest(b) and digest(a) != digest(c)


def test_white_background_and_varied_creatures(tmp_path):
    images = _load(sprites.write_sprites(str(tmp_path), count=36, seed=0, size=32)).astype(int)
    assert images.shape == (36, 32, 32, 3)
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners >= 250).mean() > 0.9  # white background, as the real sprites have
    white = (images >= 250).all(-1).mean((1, 2))
    assert np.all((white > 0.3) & (white < 0.95))  # a creature covers part of every frame
    flat = images.reshape(36, -1) / 255.0
    d = np.sqrt(((flat[:, None] - flat[None]) ** 2).mean(-1))[np.triu_indices(36, 1)]
    assert d.min() > 0.02  # no two alike


def test_colours_follow_the_type():
    # Mean colour of the non-white pixels: fire is red-dominant, water blue, grass green.
    def colour(kind):
        px = np.concatenate([sprites.render_sprite(kind, seed=s, size=32).reshape(-1, 3) for s in range(8)])
        return px[(px < 240).any(-1)].mean(0)

    r, g, b = colour("fire")
    assert r > g and r > b
    r, g, b = colour("water")
    assert b > r and b > g
    r, g, b = colour("grass")
    assert g > r and g > b


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown type 'plasma'"):
        sprites.render_sprite("plasma", seed=0)
    with pytest.raises(ValueError, match="count must be >= 1"):
        sprites.write_sprites("/nonexistent", count=0)
    with pytest.raises(ValueError, match="unknown types"):
        sprites.write_sprites("/nonexistent", count=1, types=["fire", "plasma"])
