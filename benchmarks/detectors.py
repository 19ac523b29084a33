"""TinySSD against keras-cv's RetinaNet: accuracy, size, training speed and serving latency of two
detectors that kcv-train has pushed.

    kcv-train --experiment=tiny_ssd_bananas && kcv-train --experiment=retinanet_bananas
    python benchmarks/detectors.py [--runs=runs/tiny_ssd_bananas,runs/retinanet_bananas] [--quick] [--json=PATH]

For each pipeline root (its newest complete run record): mAP@0.5 and COCO mAP@[.5:.95] as the
Evaluator measured them on the exported SavedModel (metrics.json), the trainable parameters of the
trained model (model.keras), training images/s (the median over epochs 2.. of the Trainer's
`speed/images_per_second` TensorBoard scalar; epoch 1 holds the tracing), and the wall time of
the Trainer component. Then each pushed SavedModel's `serving_images` signature (decoding and
NMS inside the graph) is timed at batch 1 and 8 on the run's own eval images, contenders
interleaved after warm-up. Accuracy comes from the runs as they were trained: compare runs made
with their presets on the same data (the embedded banana scenes by default).
"""
from __future__ import annotations

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

DEFAULT_RUNS = "runs/tiny_ssd_bananas,runs/retinanet_bananas"


def parse_args(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--runs", default=DEFAULT_RUNS, help="comma-separated pipeline roots of pushed detector runs")
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes for the latency")
    return p.parse_args(argv)


def newest_record(root: str) -> dict:
    """The newest complete run record of `root` that pushed a model; SystemExit with one line otherwise."""
    for path in sorted(glob.glob(os.path.join(root, "runs", "*.json")), reverse=True):
        with open(path) as f:
            record = json.load(f)
        if record.get("status") == "complete" and "pushed" in record.get("artifacts", {}):
            return record
    raise SystemExit(f"detectors.py: {root} has no complete run that pushed a model (run kcv-train first)")


def images_per_second(model_run: str) -> float | None:
    """Median of the Trainer's per-epoch `speed/images_per_second` after the first epoch."""
    import tensorflow as tf

    values: dict[int, float] = {}
    for events in glob.glob(os.path.join(model_run, "tensorboard", "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            for value in event.summary.value:
                if value.tag == "speed/images_per_second":
                    values[int(event.step)] = float(tf.make_ndarray(value.tensor))
    later = [v for step, v in sorted(values.items())][1:] or list(values.values())
    return float(sorted(later)[len(later) // 2]) if later else None


def describe(root: str) -> dict:
    """What the run measured and what it is: metrics, parameters, speed, paths."""
    import keras

    import kcv.models  # noqa: F401  (registers kcv's serializable classes for model.keras)

    record = newest_record(root)
    artifacts = record["artifacts"]
    with open(os.path.join(artifacts["evaluation"], "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(artifacts["pushed"], "pushed.json")) as f:
        pushed = json.load(f)["pushed_to"]
    model = keras.saving.load_model(os.path.join(artifacts["model"], "model.keras"), compile=False)
    trainer = record["components"]["Trainer"]
    return {"experiment": record["experiment"], "run_id": record["run_id"], "map_50": metrics.get("map_50"),
            "coco_map": metrics.get("map"), "eval_images": metrics.get("examples"),
            "trainable_params": int(sum(int(w.numpy().size) for w in model.trainable_weights)),
            "train_images_per_second": images_per_second(artifacts["model_run"]),
            "trainer_seconds": trainer.get("seconds"), "saved_model": pushed, "examples": artifacts["examples"]}


def eval_images(examples: str, size: tuple[int, int], count: int):
    """(count, H, W, 3) uint8 eval scenes at the detector's input size (repeated if there are fewer)."""
    import numpy as np
    import tensorflow as tf

    from kcv.data import tfrecords
    from kcv.data.schema import decode_image, parse_example

    images = []
    for serialized in tfrecords.read_records(os.path.join(examples, "Split-eval")).take(count):
        image = tf.image.resize(decode_image(parse_example(serialized)["image/encoded"]), size)
        images.append(np.clip(np.round(image.numpy()), 0, 255).astype("uint8"))
    if not images:
        raise SystemExit(f"detectors.py: {examples}/Split-eval holds no examples")
    while len(images) < count:
        images += images[: count - len(images)]
    return np.stack(images)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from pipelines.tasks.base import signature_image_size

    roots = [r for r in args.runs.split(",") if r]
    runs = {root: describe(root) for root in roots}
    info = H.machine()
    info.update(H.versions("tensorflow", "keras", "keras_cv"), runs=runs)
    for root, run in runs.items():
        H.log(f"{run['experiment']}: mAP@0.5 {run['map_50']:.4f}, COCO mAP {run['coco_map']:.4f} on "
              f"{run['eval_images']} eval images, {run['trainable_params']:,} trainable parameters, "
              f"{run['train_images_per_second'] or float('nan'):.1f} train images/s, Trainer "
              f"{run['trainer_seconds'] or float('nan'):.0f} s ({root})")
    batches = [1, 2] if args.smoke else [int(b) for b in args.batches.split(",")]
    tables, verdicts = [], []
    for b in batches:
        contenders = {}
        for root, run in runs.items():
            fn = tf.saved_model.load(run["saved_model"]).signatures["serving_images"]
            x = tf.constant(eval_images(run["examples"], signature_image_size(fn), b))
            contenders[f"{run['experiment']} serving_images"] = H.timed(
                lambda fn=fn, x=x: fn(images=x), lambda o: o["boxes"].numpy())
        rounds = args.rounds or (2 if args.smoke else 10 if args.quick else 30)
        secs = H.interleave(contenders, rounds=rounds, warmup=2, log=None)
        table = H.Table(f"Serving latency, batch {b} (decode + NMS in the graph)", "ms per call",
                        higher_better=False, ratio_label="vs first")
        for name in secs:
            table.add(name, [1e3 * t for t in secs[name]])
        base = table.rows[0].stats.median
        for row in table.rows[1:]:
            row.ratio = f"{row.stats.median / base:.2f}x"
        tables.append(table)
    for run in runs.values():
        verdicts.append(f"[info] {run['experiment']}: mAP@0.5 {run['map_50']:.4f}, COCO mAP {run['coco_map']:.4f}, "
                        f"{run['trainable_params']:,} trainable parameters, "
                        f"{run['train_images_per_second'] or float('nan'):.1f} train images/s")
    H.finish(tables, info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
