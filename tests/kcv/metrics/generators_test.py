"""kcv.metrics.generators: moments_report and generator_report against hand-computed cases."""
import math

import numpy as np
import pytest

from kcv.metrics import GENERATOR_THRESHOLDS, generator_report, moments_report


def test_moments_report_hand_checked():
    real = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])  # mean [1, 1], cov diag(4/3)
    gen = real * 1.1  # mean [1.1, 1.1], cov diag(4/3 * 1.21)
    r = moments_report(gen, real, rtol=0.25)
    assert r["mean_rel_error"] == pytest.approx(0.1)   # ||[0.1, 0.1]|| / ||[1, 1]||
    assert r["cov_rel_error"] == pytest.approx(0.21)   # 1.21 - 1 on the diagonal, 0 off it
    assert r["ok"] and not moments_report(gen, real, rtol=0.2)["ok"]
    with pytest.raises(ValueError, match="need"):
        moments_report(np.ones((3, 2)), np.ones((3, 3)))


def test_generator_report_hand_checked():
    # Two 1-pixel images, 0 and 255: distance sqrt((1 - 0)^2 / 1) = 1, pixel std 0.5 (population),
    # diversity 1 / (sqrt(2) * 0.5) = sqrt(2), no duplicates, span 1.
    r = generator_report(np.array([0, 255], np.uint8).reshape(2, 1, 1, 1))
    assert r["mean_pairwise_distance"] == pytest.approx(1.0)
    assert r["pixel_std"] == pytest.approx(0.5)
    assert r["diversity"] == pytest.approx(math.sqrt(2))
    assert r["duplicate_fraction"] == 0.0 and r["value_span"] == 1.0 and r["ok"]
    assert (r["min"], r["max"]) == (0.0, 255.0)


def test_generator_report_flags_collapse_nan_and_range():
    same = np.full((6, 8, 8, 3), 100, np.uint8)
    r = generator_report(same)
    assert r["duplicate_fraction"] == 1.0 and r["mean_pairwise_distance"] == 0.0 and not r["ok"]
    assert {"duplicate_fraction", "mean_pairwise_distance", "value_span"} <= set(r["failures"])

    rng = np.random.default_rng(0)
    noise = rng.uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    r = generator_report(noise, reference=noise[::-1])
    # Independent U(0, 1) pixels: E(a - b)^2 = 1/6, RMS distance ~0.408, std sqrt(1/12) ~0.289,
    # diversity ~1; the reference is the same set, so diversity_vs_reference is exactly 1.
    assert r["mean_pairwise_distance"] == pytest.approx(math.sqrt(1 / 6), rel=0.05)
    assert r["pixel_std"] == pytest.approx(math.sqrt(1 / 12), rel=0.05)
    assert r["diversity"] == pytest.approx(1.0, rel=0.05)
    assert r["diversity_vs_reference"] == pytest.approx(1.0) and r["ok"]

    bad = noise.copy()
    bad[0, 0, 0, 0] = np.nan
    bad[1, 0, 0, 0] = 3.0
    r = generator_report(bad)
    assert not r["finite"] and not r["in_range"] and {"finite", "in_range"} <= set(r["failures"])
    with pytest.raises(ValueError, match="need images"):
        generator_report(np.zeros((1, 4, 4, 3), np.uint8))


def test_thresholds_are_applied_and_overridable():
    # Two 1-pixel images 0.5 apart (uint8 0 and 128 -> 0 and 0.50196): above the default
    # min_pairwise_distance 0.05, below a demanded 0.6; a reference twice as varied (0 and 255:
    # distance 1) gives diversity_vs_reference 0.502 >= 0.2.
    images = np.array([0, 128], np.uint8).reshape(2, 1, 1, 1)
    reference = np.array([0, 255], np.uint8).reshape(2, 1, 1, 1)
    before = dict(GENERATOR_THRESHOLDS)
    r = generator_report(images, reference=reference)
    assert r["ok"] and r["diversity_vs_reference"] == pytest.approx(128 / 255)
    strict = generator_report(images, reference=reference, thresholds={"min_pairwise_distance": 0.6})
    assert strict["failures"] == ["mean_pairwise_distance"]
    assert GENERATOR_THRESHOLDS == before  # the override did not leak into the defaults
