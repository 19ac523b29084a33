"""Checks of what a trained generator produces (the GAN Evaluator's numbers), all numpy.

- `moments_report(generated, real)`: the toy GAN's samples (n, d) against the data's: sample mean
  and covariance, relative errors, pass/fail at `rtol`.
- `generator_report(images, reference=None)`: image generators (n, H, W, C): NaN, value range
  and sample diversity (mean pairwise distance, near-duplicates), pass/fail at
  `GENERATOR_THRESHOLDS`, which also lists how the thresholds were measured.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def moments_report(generated: Any, real: Any, rtol: float = 0.1) -> dict[str, Any]:
    """Compare sample mean and covariance of `generated` (n, d) with `real` (m, d).

    Relative errors are Frobenius-norm ratios, ||mean_g - mean_r|| / ||mean_r|| and
    ||cov_g - cov_r|| / ||cov_r||; the elementwise maxima are reported too. `ok` is True when
    both norm ratios are <= rtol and everything is finite.
    """
    g = np.asarray(generated, np.float64)
    r = np.asarray(real, np.float64)
    if g.ndim != 2 or r.ndim != 2 or g.shape[1] != r.shape[1] or len(g) < 2 or len(r) < 2:
        raise ValueError(f"moments_report: need (n, d) and (m, d) with n, m >= 2; got {g.shape}, {r.shape}")
    mean_g, mean_r = g.mean(0), r.mean(0)
    cov_g, cov_r = np.cov(g, rowvar=False), np.cov(r, rowvar=False)
    mean_err = float(np.linalg.norm(mean_g - mean_r) / np.linalg.norm(mean_r))
    cov_err = float(np.linalg.norm(cov_g - cov_r) / np.linalg.norm(cov_r))
    finite = bool(np.isfinite(g).all())
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero entry of real gives inf (or 0 if equal)
        mean_el = np.nan_to_num(np.abs(mean_g - mean_r) / np.abs(mean_r), nan=0.0)
        cov_el = np.nan_to_num(np.abs(cov_g - cov_r) / np.abs(cov_r), nan=0.0)
    return {
        "generated_mean": mean_g.tolist(),
        "real_mean": mean_r.tolist(),
        "generated_cov": cov_g.tolist(),
        "real_cov": cov_r.tolist(),
        "mean_rel_error": mean_err,
        "cov_rel_error": cov_err,
        "mean_max_elementwise_rel_error": float(mean_el.max()),
        "cov_max_elementwise_rel_error": float(cov_el.max()),
        "finite": finite,
        "rtol": rtol,
        "ok": bool(finite and mean_err <= rtol and cov_err <= rtol),
    }


# Recommended blessing thresholds for image generators (pixel units are [0, 1]); see
# generator_report. A collapsed generator gives pairwise distance ~0 and duplicates ~1. Measured
# on 64x64 embedded sprites (64 samples): real images 0.275 mean pairwise distance; the book's
# DCGAN after 96 steps at lr 0.005 0.069 (0.25 of the data's, 0.25% duplicates: passes); after
# 96 steps at lr 0.0005 0.022 (0.08 of the data's, 45% duplicates: flat grey, fails).
GENERATOR_THRESHOLDS: dict[str, float] = {
    "min_pairwise_distance": 0.05,   # mean per-pixel RMS difference between two samples
    "max_duplicate_fraction": 0.10,  # share of pairs closer than `duplicate_distance`
    "duplicate_distance": 0.02,      # ~5 grey levels RMS: visually the same image
    "min_value_span": 0.25,          # max - min pixel value over the batch
    "min_diversity_vs_reference": 0.2,  # samples 5x less varied than real ones: partial collapse
}


def _pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Per-pixel RMS distances of all pairs i < j of rows of x (n, d) -> (n*(n-1)/2,)."""
    x = x - x.mean(axis=0)  # centring keeps the Gram-matrix form from cancelling catastrophically
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    iu = np.triu_indices(len(x), k=1)
    return np.sqrt(d2[iu] / x.shape[1])


def _to_unit(images: Any, value_range: tuple[float, float]) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    lo, hi = value_range
    return (arr.astype(np.float64) - lo) / (hi - lo)


def generator_report(
    images: Any,
    reference: Any | None = None,
    thresholds: dict[str, float] | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> dict[str, Any]:
    """Health and diversity of a batch of generated images (n, H, W, C), n >= 2.

    `images` is uint8 (what the exported signature returns) or float in `value_range`.
    Distances are per-pixel RMS differences in [0, 1] units: sqrt(||a - b||^2 / (H*W*C)).
    Returns finite / in_range / min / max (input units), value_span, pixel_std (RMS over pixels
    of the across-sample std), mean_pairwise_distance, diversity (mean pairwise distance /
    (sqrt(2) * pixel_std): about 1 for independent samples, lower when they cluster),
    duplicate_fraction, and with `reference` (real images) reference_pairwise_distance and
    diversity_vs_reference. `ok` applies GENERATOR_THRESHOLDS (overridable) and `failures`
    names the checks that failed.
    """
    limits = dict(GENERATOR_THRESHOLDS, **(thresholds or {}))
    arr = np.asarray(images)
    if arr.ndim != 4 or len(arr) < 2:
        raise ValueError(f"generator_report: need images (n >= 2, H, W, C); got shape {arr.shape}")
    finite = bool(np.isfinite(arr).all()) if arr.dtype.kind == "f" else True
    x = _to_unit(arr, value_range).reshape(len(arr), -1)
    safe = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0)
    in_range = bool(finite and safe.min() >= -1e-6 and safe.max() <= 1 + 1e-6)
    pixel_std = float(np.sqrt(np.mean(np.var(safe, axis=0))))
    distances = _pairwise_distances(safe)
    mean_dist = float(distances.mean())
    report: dict[str, Any] = {
        "num_images": int(len(arr)),
        "finite": finite,
        "in_range": in_range,
        "min": float(np.nanmin(arr)),
        "max": float(np.nanmax(arr)),
        "value_span": float(safe.max() - safe.min()),
        "pixel_std": pixel_std,
        "mean_pairwise_distance": mean_dist,
        "diversity": mean_dist / (math.sqrt(2) * pixel_std) if pixel_std > 0 else 0.0,
        "duplicate_fraction": float(np.mean(distances < limits["duplicate_distance"])),
    }
    failures = []
    if not finite:
        failures.append("finite")
    if not in_range:
        failures.append("in_range")
    if report["value_span"] < limits["min_value_span"]:
        failures.append("value_span")
    if mean_dist < limits["min_pairwise_distance"]:
        failures.append("mean_pairwise_distance")
    if report["duplicate_fraction"] > limits["max_duplicate_fraction"]:
        failures.append("duplicate_fraction")
    if reference is not None:
        ref = _to_unit(reference, value_range).reshape(len(reference), -1)
        ref_dist = float(_pairwise_distances(ref).mean())
        report["reference_pairwise_distance"] = ref_dist
        report["diversity_vs_reference"] = mean_dist / ref_dist if ref_dist > 0 else 0.0
        if report["diversity_vs_reference"] < limits["min_diversity_vs_reference"]:
            failures.append("diversity_vs_reference")
    report["failures"] = failures
    report["ok"] = not failures
    return report
