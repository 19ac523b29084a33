"""NMS and detection decoding: kcv against tf.image.non_max_suppression and keras-cv.

    python benchmarks/detection_nms.py [--fast_rounds=200] [--rounds=40] [--slow_rounds=5]
                                       [--nms_rounds=20] [--workloads=A,B,C]

Workloads (float32, CPU, every contender compiled with tf.function, outputs checked equal first):
  A  one image, 10,000 random boxes, keep 100:   kcv.ops.nms(max_output_size=100)
  A' the same boxes, keep everything (the book's nms has no limit)
  B  8 images x 5,000 anchors x 20 classes, 100 detections per image (serving shape):
     kcv.ops.detections_padded; peers decode the same way, then NMS per image
  B' the same, the book's full multibox_detection table (B, A, 6); peers do NMS keeping everything
  C  the exported detector's two NMS paths: kcv.models.tiny_ssd.outputs_to_padded(..., nms="kcv")
     (the book's NMS, the default) against nms="keras_cv" (keras_cv.layers.NonMaxSuppression) on
     TinySSD's 256x256 outputs (5444 anchors, random logits and offsets, 100 detections, score
     >= 0.01), traced as the export traces them (tf.function, batch dimension None): 1 class at
     batch 1 and 8, 20 classes at batch 8
Timing: warm-up, then rounds in which every contender runs once (order rotated each round);
median and p10-p90 spread in ms; "kcv speed-up" = peer median / kcv median.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

# TensorFlow, keras-cv and kcv are imported in main(), after the flags parse: --help stays instant.
tf = keras_cv = ops = None
F = np.float32
POS = 0.009999999  # kcv.ops.BOOK_POS_THRESHOLD (checked in main)


def timed_rounds(contenders: dict, rounds: int, warmup: int = 2) -> dict[str, np.ndarray]:
    """Interleaved timing: each round calls every contender once, rotating the order."""
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            _block(contenders[name]())
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            _block(contenders[name]())
            times[name].append(time.perf_counter() - start)
    return {name: np.array(t) * 1e3 for name, t in times.items()}


def _block(result):
    for t in tf.nest.flatten(result):
        t.numpy()  # wait for the value


def report(title: str, times: dict[str, np.ndarray], ours: str) -> None:
    base = np.median(times[ours])
    print(f"\n{title}")
    print(f"  {'contender':<44} {'median ms':>10} {'p10-p90 ms':>16} {'kcv speed-up':>13}")
    for name, t in times.items():
        lo, hi = np.percentile(t, [10, 90])
        ratio = "" if name == ours else f"{np.median(t) / base:.2f}x"
        print(f"  {name:<44} {np.median(t):>10.2f} {f'{lo:.2f}-{hi:.2f}':>16} {ratio:>13}")


def random_boxes(rng, n):
    centre = rng.uniform(0, 1, (n, 2))
    half = rng.uniform(0.01, 0.1, (n, 2))
    return np.concatenate([centre - half, centre + half], 1).astype(F)


def detection_inputs(rng, batch=8, classes=20):
    anchors = ops.multibox_prior(tf.zeros((1, 25, 40, 1)), [0.2, 0.1, 0.05], [1, 2, 0.5])  # 25*40*5 = 5000
    num_anchors = anchors.shape[1]
    logits = rng.normal(scale=2.0, size=(batch, classes + 1, num_anchors))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    offsets = rng.normal(scale=0.3, size=(batch, 4 * num_anchors))
    return tf.constant(probs.astype(F)), tf.constant(offsets.astype(F)), anchors


def decode(probs, offsets, anchors):
    """What every peer needs before NMS: boxes (B, A, 4), conf (B, A), scores (B, A, C)."""
    boxes = ops.offset_inverse(tf.reshape(anchors, [1, -1, 4]), tf.reshape(offsets, [tf.shape(probs)[0], -1, 4]))
    scores = tf.transpose(probs[:, 1:, :], [0, 2, 1])
    return boxes, tf.reduce_max(scores, axis=-1), scores


def workload_a(rng, fast_rounds, slow_rounds):
    boxes = tf.constant(random_boxes(rng, 10_000))
    scores = tf.constant(rng.uniform(size=10_000).astype(F))
    kcv_nms = tf.function(lambda b, s: ops.nms(b, s, 0.5, max_output_size=100))
    tf_nms = tf.function(lambda b, s: tf.image.non_max_suppression(b, s, 100, 0.5))
    layer = keras_cv.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=False, iou_threshold=0.5, confidence_threshold=0.0, max_detections=100
    )
    kc_nms = tf.function(lambda b, s: layer(b[None], s[None, :, None]))

    keep = kcv_nms(boxes, scores).numpy()
    assert np.array_equal(keep, tf_nms(boxes, scores).numpy()), "kcv and tf.image disagree"
    kc = kc_nms(boxes, scores)
    n = int(kc["num_detections"][0])
    assert n == len(keep) and np.array_equal(kc["boxes"][0, :n].numpy(), boxes.numpy()[keep]), "keras-cv disagrees"
    print(f"A: checked equal: the same {len(keep)} kept boxes in the same order (kcv, tf.image, keras-cv)")
    report(
        "A. one image, 10,000 boxes, keep 100",
        timed_rounds(
            {
                "kcv.ops.nms(max_output_size=100)": lambda: kcv_nms(boxes, scores),
                "tf.image.non_max_suppression(100)": lambda: tf_nms(boxes, scores),
                "keras_cv.layers.NonMaxSuppression(100)": lambda: kc_nms(boxes, scores),
            },
            fast_rounds,  # sub-millisecond calls: many rounds to see through scheduling noise
            warmup=5,
        ),
        "kcv.ops.nms(max_output_size=100)",
    )

    n_all = boxes.shape[0]
    kcv_all = tf.function(lambda b, s: ops.nms(b, s, 0.5))
    tf_all = tf.function(lambda b, s: tf.image.non_max_suppression(b, s, n_all, 0.5))
    keep_all = kcv_all(boxes, scores).numpy()
    assert np.array_equal(keep_all, tf_all(boxes, scores).numpy())
    print(f"\nA': checked equal: {len(keep_all)} kept boxes (kcv, tf.image)")
    report(
        "A'. one image, 10,000 boxes, keep all (the book's nms)",
        timed_rounds(
            {"kcv.ops.nms": lambda: kcv_all(boxes, scores), "tf.image.non_max_suppression(N)": lambda: tf_all(boxes, scores)},
            slow_rounds,
            warmup=1,
        ),
        "kcv.ops.nms",
    )


def workload_b(rng, rounds, slow_rounds):
    probs, offsets, anchors = detection_inputs(rng)
    batch, num_anchors = probs.shape[0], probs.shape[2]

    # B: 100 detections per image.
    kcv_pad = tf.function(lambda p, o, a: ops.detections_padded(p, o, a, 0.5, POS, max_detections=100))

    def tf_pad(p, o, a):
        boxes, conf, scores = decode(p, o, a)
        out = []
        for i in range(batch):  # independent kernels: TensorFlow runs them in parallel
            keep = tf.image.non_max_suppression(boxes[i], conf[i], 100, 0.5, score_threshold=POS)
            out.append((tf.gather(boxes[i], keep), tf.gather(conf[i], keep), tf.argmax(tf.gather(scores[i], keep), -1)))
        return out

    tf_pad = tf.function(tf_pad)
    layer = keras_cv.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=False, iou_threshold=0.5, confidence_threshold=POS, max_detections=100
    )

    def kc_pad(p, o, a):
        boxes, _, scores = decode(p, o, a)
        return layer(boxes, scores)

    kc_pad = tf.function(kc_pad)

    ours, peer, kc = kcv_pad(probs, offsets, anchors), tf_pad(probs, offsets, anchors), kc_pad(probs, offsets, anchors)
    for i in range(batch):
        n = int(ours["num_detections"][i])
        b, c, k = (x.numpy() for x in peer[i])
        # tf.image keeps score > threshold, the book conf >= threshold: equal unless a conf hits it exactly.
        assert n == len(b) == int(kc["num_detections"][i])
        assert np.array_equal(ours["boxes"][i, :n].numpy(), b) and np.array_equal(ours["scores"][i, :n].numpy(), c)
        assert np.array_equal(ours["classes"][i, :n].numpy(), k)
        assert np.allclose(kc["boxes"][i, :n].numpy(), b) and np.array_equal(kc["classes"][i, :n].numpy(), k)
    print(f"\nB: checked equal: boxes, scores, classes of {int(tf.reduce_sum(ours['num_detections']))} detections")
    report(
        f"B. {batch} images x {num_anchors} anchors x 20 classes, 100 detections per image (decode + NMS)",
        timed_rounds(
            {
                "kcv.ops.detections_padded(100)": lambda: kcv_pad(probs, offsets, anchors),
                "tf.image.non_max_suppression(100) per image": lambda: tf_pad(probs, offsets, anchors),
                "keras_cv.layers.NonMaxSuppression(100)": lambda: kc_pad(probs, offsets, anchors),
            },
            rounds,
        ),
        "kcv.ops.detections_padded(100)",
    )

    # B': the book's full table.
    kcv_full = tf.function(lambda p, o, a: ops.multibox_detection(p, o, a, 0.5, POS))

    def tf_full(p, o, a):
        boxes, conf, _ = decode(p, o, a)
        return [tf.image.non_max_suppression(boxes[i], conf[i], num_anchors, 0.5) for i in range(batch)]

    tf_full = tf.function(tf_full)
    layer_all = keras_cv.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=False, iou_threshold=0.5, confidence_threshold=0.0, max_detections=num_anchors
    )

    def kc_full(p, o, a):
        boxes, _, scores = decode(p, o, a)
        return layer_all(boxes, scores)

    kc_full = tf.function(kc_full)
    table = kcv_full(probs, offsets, anchors).numpy()
    keeps = [k.numpy() for k in tf_full(probs, offsets, anchors)]
    kc = kc_full(probs, offsets, anchors)
    boxes_all = decode(probs, offsets, anchors)[0].numpy()
    for i in range(batch):
        k = keeps[i]
        assert np.array_equal(table[i, : len(k), 2:], boxes_all[i][k]) and int(kc["num_detections"][i]) == len(k)
        assert np.allclose(kc["boxes"][i, : len(k)].numpy(), boxes_all[i][k])
    print(f"\nB': checked equal: kept rows of the book table = tf.image keep order = keras-cv ({sum(map(len, keeps))} boxes)")
    report(
        f"B'. {batch} images x {num_anchors} anchors x 20 classes, the book's full table (keep everything)",
        timed_rounds(
            {
                "kcv.ops.multibox_detection (B, A, 6)": lambda: kcv_full(probs, offsets, anchors),
                "tf.image.non_max_suppression(A) per image": lambda: tf_full(probs, offsets, anchors),
                f"keras_cv.layers.NonMaxSuppression({num_anchors})": lambda: kc_full(probs, offsets, anchors),
            },
            slow_rounds,
            warmup=1,
        ),
        "kcv.ops.multibox_detection (B, A, 6)",
    )


def workload_c(rng, rounds):
    """The exported detector's NMS choice, through outputs_to_padded exactly as the export calls it."""
    from kcv.models.tiny_ssd import BOOK_RATIOS, BOOK_SIZES, NMS_CHOICES, anchors_for_maps, outputs_to_padded

    anchors = tf.constant(anchors_for_maps([(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)], BOOK_SIZES, BOOK_RATIOS))
    num_anchors = anchors.shape[1]  # 5444, TinySSD at 256x256
    for classes, batch in ((1, 1), (1, 8), (20, 8)):
        signature = [tf.TensorSpec([1, num_anchors, 4]), tf.TensorSpec([None, num_anchors, classes + 1]),
                     tf.TensorSpec([None, 4 * num_anchors])]
        fns = {nms: tf.function(lambda a, c, b, nms=nms: outputs_to_padded(a, c, b, 100, 0.5, 0.01, nms=nms),
                                input_signature=signature) for nms in NMS_CHOICES}
        logits = tf.constant(rng.normal(scale=2.0, size=(batch, num_anchors, classes + 1)).astype(F))
        offsets = tf.constant(rng.normal(scale=0.3, size=(batch, 4 * num_anchors)).astype(F))
        outs = {nms: {k: v.numpy() for k, v in fn(anchors, logits, offsets).items()} for nms, fn in fns.items()}
        for key in outs["kcv"]:
            assert np.array_equal(outs["kcv"][key], outs["keras_cv"][key]), f"nms paths differ in {key}"
        print(f"\nC: checked equal (bit for bit): boxes, scores, classes, counts of "
              f"{int(outs['kcv']['num_detections'].sum())} detections, {classes} class(es), batch {batch}")
        names = {"kcv": 'outputs_to_padded(nms="kcv")', "keras_cv": 'outputs_to_padded(nms="keras_cv")'}
        report(
            f"C. exported detector NMS: {batch} image(s) x {num_anchors} anchors x {classes} class(es), 100 detections",
            timed_rounds({names[n]: (lambda fn=fn: fn(anchors, logits, offsets)) for n, fn in fns.items()}, rounds),
            names["kcv"],
        )


def main() -> None:
    global tf, keras_cv, ops
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast_rounds", type=int, default=200, help="timed rounds for workload A (sub-millisecond)")
    parser.add_argument("--rounds", type=int, default=40, help="timed rounds for workload B")
    parser.add_argument("--slow_rounds", type=int, default=5, help="timed rounds for the keep-everything workloads")
    parser.add_argument("--nms_rounds", type=int, default=20, help="timed rounds for workload C")
    parser.add_argument("--workloads", default="A,B,C", help="comma-separated subset of A (with A'), B (with B'), C")
    args = parser.parse_args()
    chosen = {w.strip().upper() for w in args.workloads.split(",") if w.strip()}
    if not chosen <= {"A", "B", "C"}:
        parser.error(f"--workloads: unknown {sorted(chosen - {'A', 'B', 'C'})}; use A, B, C")
    import tensorflow as tf
    import keras_cv
    from kcv import ops

    assert POS == ops.BOOK_POS_THRESHOLD
    print(
        f"TensorFlow {tf.__version__}, keras-cv {keras_cv.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    rng = np.random.default_rng(0)
    if "A" in chosen:
        workload_a(rng, args.fast_rounds, args.slow_rounds)
    if "B" in chosen:
        workload_b(rng, args.rounds, args.slow_rounds)
    if "C" in chosen:
        workload_c(np.random.default_rng(1), args.nms_rounds)


if __name__ == "__main__":
    main()
