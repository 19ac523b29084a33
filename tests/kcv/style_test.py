"""kcv.style.transfer on a tiny random-weight VGG: book semantics checked by hand."""
import numpy as np
import pytest
import tensorflow as tf

from kcv import style
from kcv.losses.style import gram, style_loss, tv_loss
from kcv.models.vgg import vgg19_features

LAYERS = dict(content_layers=("block2_conv2",), style_layers=("block1_conv1", "block2_conv1"))


@pytest.fixture(scope="module")
def extractor():
    with pytest.warns(UserWarning, match="random weights"):
        return vgg19_features(weights="random", seed=0, **LAYERS)


def _images(h=12, w=16):
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (h, w, 3)).astype("uint8")
    style_img = rng.integers(0, 256, (h, w, 3)).astype("uint8")
    return content, style_img


def test_zero_steps_returns_the_content_image(extractor):
    content, style_img = _images()
    image, losses = style.transfer(
        content, style_img, image_size=(12, 16), steps=0, extractor=extractor
    )
    # same size -> the resize is the identity; normalise/denormalise round trip is exact to 1e-6
    np.testing.assert_allclose(image, content / 255.0, atol=1e-6)
    assert image.dtype == np.float32 and image.shape == (12, 16, 3)
    assert {k: v.shape for k, v in losses.items()} == {"content": (0,), "style": (0,), "tv": (0,)}


def test_first_step_losses_are_the_books_formula(extractor):
    content, style_img = _images()
    _, losses = style.transfer(
        content, style_img, image_size=(12, 16), steps=3, extractor=extractor,
        content_weight=2.0, style_weight=100.0, tv_weight=10.0,
    )
    # step 0 is evaluated at the initial image = the content image, so the content loss is 0
    assert losses["content"][0] == pytest.approx(0.0, abs=1e-9)
    assert losses["content"][2] > 0  # then the image moves away from it
    # style: 100 · Σ_layers MSE(gram(F(content)), gram(F(style))), computed independently here
    c = tf.constant(content[None] / 255.0, tf.float32)
    s = tf.constant(style_img[None] / 255.0, tf.float32)
    fc, fs = extractor(c)["style"], extractor(s)["style"]
    want_style = 100.0 * sum(float(style_loss(fc[n], gram(fs[n]))) for n in fc)
    assert losses["style"][0] == pytest.approx(want_style, rel=1e-4)
    # TV is taken on the book's normalised image: 10 · tv((x - mean) / std)
    normalised = (c - np.array(style.RGB_MEAN, "float32")) / np.array(style.RGB_STD, "float32")
    assert losses["tv"][0] == pytest.approx(10.0 * float(tv_loss(normalised)), rel=1e-5)


def test_learning_rate_is_step_decay(extractor):
    content, style_img = _images()
    seen = []
    style.transfer(
        content, style_img, image_size=(12, 16), steps=5, lr=0.3, lr_decay=0.5, lr_period=2,
        extractor=extractor, callback=lambda step, logs: seen.append((step, logs["lr"])),
    )
    # 0.3 · 0.5 ** (step // 2): steps 0,1 -> 0.3; 2,3 -> 0.15; 4 -> 0.075
    assert [s for s, _ in seen] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([lr for _, lr in seen], [0.3, 0.3, 0.15, 0.15, 0.075], rtol=1e-6)


def test_one_adam_step_moves_pixels_by_lr_in_normalised_space(extractor):
    rng = np.random.default_rng(1)
    content = rng.uniform(0.3, 0.7, (12, 16, 3)).astype("float32")
    weights_before = [w.copy() for w in extractor.get_weights()]
    image, _ = style.transfer(
        content, content, image_size=(12, 16), steps=1, lr=0.3, extractor=extractor,
        content_weight=0.0, style_weight=0.0, tv_weight=10.0,
    )
    # Adam's first step is lr · m̂/(sqrt(v̂) + eps) = lr · g/(|g| + eps) ≈ ±0.3 in the normalised
    # space wherever the TV gradient is non-zero, i.e. ±0.3 · std in RGB:
    # 0.3 · 0.229 = 0.0687, 0.3 · 0.224 = 0.0672, 0.3 · 0.225 = 0.0675 (0 where signs cancel)
    delta = np.abs(image - content)
    step = 0.3 * np.array(style.RGB_STD, "float32")
    # rtol: Keras adds epsilon to sqrt(v) before bias correction (torch after), so its effective
    # epsilon at step 1 is 1e-8 / sqrt(1 - 0.999) = 3.2e-7; where TV signs nearly cancel,
    # |g| = 5 · (1/528 - 1/540) = 2.1e-4 and the step is short by 3.2e-7 / 2.1e-4 = 0.15%
    moved = np.isclose(delta, step, rtol=5e-3)
    still = delta < 1e-6
    assert np.all(moved | still)
    assert moved.mean() > 0.5
    # only the image is trained: the extractor's weights are untouched
    for before, after in zip(weights_before, extractor.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_losses_fall_and_image_is_clamped(extractor):
    content, style_img = _images(20, 24)
    image, losses = style.transfer(
        content, style_img, image_size=(16, 20), steps=15, extractor=extractor,
    )
    assert image.shape == (16, 20, 3) and image.min() >= 0.0 and image.max() <= 1.0
    assert all(np.all(np.isfinite(v)) and v.shape == (15,) for v in losses.values())
    total = losses["content"] + losses["style"] + losses["tv"]
    assert total[-1] < 0.5 * total[0]
    assert losses["style"][-1] < losses["style"][0]
    assert style.to_uint8(np.array([0.0, 0.5, 0.999, 1.0])).tolist() == [0, 127, 254, 255]


def test_bad_inputs_are_clear(extractor):
    content, style_img = _images()
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB image"):
        style.transfer(content[..., :1], style_img, steps=0, extractor=extractor)
    with pytest.raises(ValueError, match="image_size"):
        style.transfer(content, style_img, image_size=(0, 5), steps=0, extractor=extractor)
    with pytest.raises(ValueError, match="steps"):
        style.transfer(content, style_img, steps=-1, extractor=extractor)
