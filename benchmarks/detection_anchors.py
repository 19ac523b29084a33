"""multibox_prior on the book's cat-and-dog size: kcv (TensorFlow) against NumPy.

    python benchmarks/detection_anchors.py [--rounds=20]

561 x 728 pixels, sizes [0.75, 0.5, 0.25], ratios [1, 2, 0.5]: 5 anchors per pixel, 2,042,040
anchors (32.7 MB of float32). Contenders, all checked bit-identical first:
  kcv eager            kcv.ops.multibox_prior(data, ...) called eagerly
  kcv tf.function      kcv.ops.anchors_for_size with H, W as runtime tensors (no constant folding)
  NumPy, book port     the book's PyTorch steps in NumPy (meshgrid, tile, repeat, add)
  NumPy, broadcast     a tuned NumPy version writing the output in one broadcast pass
Interleaved rounds after warm-up; median, p10-p90; "kcv speed-up" = NumPy median / kcv median.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kcv import ops  # noqa: E402

F = np.float32
H, W = 561, 728
SIZES, RATIOS = [0.75, 0.5, 0.25], [1, 2, 0.5]


def _shapes():
    size_t, ratio_t = np.array(SIZES, F), np.array(RATIOS, F)
    w = np.concatenate((size_t * np.sqrt(ratio_t[0]), F(SIZES[0]) * np.sqrt(ratio_t[1:]))) * F(H) / F(W)
    h = np.concatenate((size_t / np.sqrt(ratio_t[0]), F(SIZES[0]) / np.sqrt(ratio_t[1:])))
    center_h = (np.arange(H).astype(F) + F(0.5)) * F(1.0 / H)
    center_w = (np.arange(W).astype(F) + F(0.5)) * F(1.0 / W)
    return w, h, center_h, center_w


def numpy_book() -> np.ndarray:
    """The book's algorithm step by step (torch -> numpy)."""
    w, h, center_h, center_w = _shapes()
    shift_y, shift_x = np.meshgrid(center_h, center_w, indexing="ij")
    shift_y, shift_x = shift_y.reshape(-1), shift_x.reshape(-1)
    manipulations = np.tile(np.stack((-w, -h, w, h)).T, (H * W, 1)) / F(2)
    grid = np.repeat(np.stack([shift_x, shift_y, shift_x, shift_y], axis=1), len(w), axis=0)
    return (grid + manipulations)[None]


def numpy_broadcast() -> np.ndarray:
    """One pass over the output: x columns from (W, k), y columns from (H, k)."""
    w, h, center_h, center_w = _shapes()
    half = np.stack((-w, -h, w, h), axis=1) / F(2)  # (k, 4)
    out = np.empty((H, W, len(w), 4), F)
    out[..., 0] = center_w[None, :, None] + half[:, 0]
    out[..., 1] = center_h[:, None, None] + half[:, 1]
    out[..., 2] = center_w[None, :, None] + half[:, 2]
    out[..., 3] = center_h[:, None, None] + half[:, 3]
    return out.reshape(1, -1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, NumPy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    data = tf.zeros((1, H, W, 3))
    graph = tf.function(lambda h, w: ops.anchors_for_size(h, w, SIZES, RATIOS))
    h_t, w_t = tf.constant(H), tf.constant(W)
    contenders = {
        "kcv eager multibox_prior": lambda: ops.multibox_prior(data, SIZES, RATIOS).numpy(),
        "kcv tf.function (runtime H, W)": lambda: graph(h_t, w_t).numpy(),
        "NumPy, book port": numpy_book,
        "NumPy, broadcast": numpy_broadcast,
    }
    results = {name: fn() for name, fn in contenders.items()}
    ref = results["NumPy, book port"].reshape(1, -1, 4)
    for name, value in results.items():
        assert np.array_equal(value.reshape(ref.shape), ref), f"{name} differs from the book port"
    print(f"checked bit-identical: {ref.shape[1]:,} anchors; pixel (250, 250) anchor 0 = {ref[0, (250 * W + 250) * 5]}")
    del results

    for fn in contenders.values():  # warm-up
        fn()
    names = list(contenders)
    times = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % 4 :] + names[: r % 4]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append((time.perf_counter() - start) * 1e3)

    medians = {name: np.median(t) for name, t in times.items()}
    print(f"\nmultibox_prior {H}x{W}, 5 anchors per pixel ({args.rounds} interleaved rounds)")
    print(f"  {'contender':<34} {'median ms':>10} {'p10-p90 ms':>14}   speed-up vs NumPy book / broadcast")
    for name, t in times.items():
        lo, hi = np.percentile(t, [10, 90])
        ratios = ""
        if name.startswith("kcv"):
            ratios = f"{medians['NumPy, book port'] / medians[name]:.2f}x / {medians['NumPy, broadcast'] / medians[name]:.2f}x"
        print(f"  {name:<34} {medians[name]:>10.2f} {f'{lo:.1f}-{hi:.1f}':>14}   {ratios}")


if __name__ == "__main__":
    main()
