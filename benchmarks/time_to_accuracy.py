"""Accuracy against wall-clock and CPU time on real CIFAR-10, trained through `kcv-train`.

Data: the 50,000 CIFAR-10 training images in ../shared/data/cifar10-train-jpeg.tar.gz
(`train/<class>/<nnnn>.jpg`, 5,000 per class). When the file is absent the script says so and
exits 0. The held-out test set is fixed and independent of --seed: files 4000.jpg-4999.jpg of
every class (10,000 images). The rest (0000-3999, 40,000 images) is the `--data_dir` of
`kcv-train --source=class_folders`; the pipeline holds out its own --valid_ratio of those for
the Evaluator, so the per-epoch curve is on that split and the final point on the fixed 10,000.

Each recipe `EXPERIMENT[:EPOCHS]` runs the whole pipeline (ExampleGen -> ... -> Pusher) in a
subprocess per seed; the pushed SavedModel is scored on the 10,000 through its serving_images
signature (plain TensorFlow). Wall-clock is measured from the start of the subprocess; CPU time is
the subprocess's user + system time (getrusage). Nothing is asserted: the table says what was
measured and on which machine.

    python benchmarks/time_to_accuracy.py --recipes=resnet18_cifar10:4 --seeds=0
    python benchmarks/time_to_accuracy.py --train_images=2000 --test_images=500 --recipes=resnet18_cifar10:1  # smoke
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import resource
import subprocess
import sys
import tarfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import _harness  # noqa: E402

DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "cifar10-train-jpeg.tar.gz")
HELD_OUT_FIRST = 4000  # files nnnn >= 4000 of each class are the fixed test set


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="the CIFAR-10 training tarball")
    p.add_argument("--work_dir", default="/tmp/kcv-time-to-accuracy", help="extracted data, runs, outputs")
    p.add_argument("--recipes", default="resnet18_cifar10:4",
                   help="comma list of EXPERIMENT[:EPOCHS] (EPOCHS = the time budget in epochs)")
    p.add_argument("--seeds", default="0", help="comma list of seeds, one pipeline run each")
    p.add_argument("--train_images", type=int, default=40000, help="training images used (<= 40000, per class even)")
    p.add_argument("--test_images", type=int, default=10000, help="held-out images scored (<= 10000, per class even)")
    p.add_argument("--target", type=float, default=0.94,
                   help="report the wall seconds to the first epoch whose pipeline-eval accuracy reaches this")
    p.add_argument("--extra_flags", default="", help="more kcv-train flags, space separated (e.g. --mixed_precision=bfloat16)")
    args = p.parse_args()
    args.work_dir = os.path.abspath(args.work_dir)  # kcv-train runs in the repository; its paths must not be relative
    return args


def _prepare(args) -> tuple[str, str]:
    """Extract once; hard-link the two fixed subsets into class folders. Returns (train_dir, test_dir)."""
    extracted = os.path.join(args.work_dir, "extracted")
    if not os.path.exists(os.path.join(extracted, ".done")):
        _harness.log(f"extracting {args.data} -> {extracted}")
        os.makedirs(extracted, exist_ok=True)
        with tarfile.open(args.data) as tar:
            tar.extractall(extracted, filter="data")
        open(os.path.join(extracted, ".done"), "w").close()
    classes = sorted(os.listdir(os.path.join(extracted, "train")))
    per_train, per_test = args.train_images // len(classes), args.test_images // len(classes)
    if not (0 < per_train <= HELD_OUT_FIRST and 0 < per_test <= 5000 - HELD_OUT_FIRST):
        raise SystemExit(f"time_to_accuracy: error: --train_images must be in [{len(classes)}, 40000] and "
                         f"--test_images in [{len(classes)}, 10000]")
    train_dir = os.path.join(args.work_dir, f"train-{per_train * len(classes)}")
    test_dir = os.path.join(args.work_dir, f"test-{per_test * len(classes)}")
    for root, first, count in ((train_dir, 0, per_train), (test_dir, HELD_OUT_FIRST, per_test)):
        if os.path.exists(os.path.join(root, ".done")):
            continue
        for c in classes:
            os.makedirs(os.path.join(root, c), exist_ok=True)
            for i in range(first, first + count):
                name = f"{i:04d}.jpg"
                target = os.path.join(root, c, name)
                if not os.path.exists(target):
                    os.link(os.path.join(extracted, "train", c, name), target)
        open(os.path.join(root, ".done"), "w").close()
    return train_dir, test_dir


def _curve(pipeline_root: str, started: float) -> list[tuple[int, float, float]]:
    """(epoch, seconds since the run started, pipeline eval accuracy) from the Trainer's TensorBoard events."""
    import tensorflow as tf

    points = []
    for path in sorted(glob.glob(os.path.join(pipeline_root, "**", "tensorboard", "validation", "events.*"),
                                 recursive=True)):
        for event in tf.compat.v1.train.summary_iterator(path):
            if event.wall_time < started:  # an earlier run in the same --work_dir
                continue
            for value in event.summary.value:
                if value.tag == "epoch_accuracy":
                    points.append((int(event.step) + 1, event.wall_time - started,
                                   float(tf.make_ndarray(value.tensor))))
    return sorted(points)


def _score(serving_dir: str, test_dir: str) -> tuple[float, int]:
    """Accuracy of the newest pushed version on the held-out class folders (its serving_images signature)."""
    import tensorflow as tf

    versions = sorted((d for d in os.listdir(serving_dir) if d.isdigit()), key=int)
    if not versions:
        raise SystemExit(f"time_to_accuracy: error: nothing was pushed to {serving_dir}")
    loaded = tf.saved_model.load(os.path.join(serving_dir, versions[-1]))
    fn = loaded.signatures["serving_images"]
    height, width, _ = fn.structured_input_signature[1]["images"].shape[1:]
    names = [n.decode() for n in loaded.class_names.numpy()]
    files, labels = [], []
    for index, name in enumerate(names):
        for f in sorted(glob.glob(os.path.join(test_dir, name, "*.jpg"))):
            files.append(f)
            labels.append(index)
    correct = 0
    for start in range(0, len(files), 500):
        batch = [tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(f), channels=3), (height, width))
                 for f in files[start:start + 500]]
        images = tf.cast(tf.round(tf.stack(batch)), tf.uint8)
        pred = fn(images=images)["probabilities"].numpy().argmax(axis=1)
        correct += int((pred == np.asarray(labels[start:start + 500])).sum())
    return correct / len(files), len(files)


def _run(args, recipe: str, seed: int, train_dir: str, test_dir: str) -> dict:
    experiment, _, epochs = recipe.partition(":")
    name = f"{experiment}-e{epochs or 'preset'}-s{seed}"
    root = os.path.join(args.work_dir, "runs", name)
    serving = os.path.join(args.work_dir, "saved_models", name)
    command = [sys.executable, "-c", "from pipelines.train import run; run()", f"--experiment={experiment}", f"--data_dir={train_dir}",
               "--source=class_folders", f"--seed={seed}", f"--pipeline_root={root}",
               f"--serving_model_dir={serving}", "--min_accuracy=0", "--max_regression=1",
               *([f"--epochs={epochs}"] if epochs else []), *args.extra_flags.split()]
    _harness.log(" ".join(command))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    result = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-15:])
        raise SystemExit(f"time_to_accuracy: error: {name} failed (exit {result.returncode}):\n{tail}")
    accuracy, scored = _score(serving, test_dir)
    return {"recipe": recipe, "seed": seed, "wall_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "held_out_accuracy": accuracy, "held_out_images": scored, "curve": _curve(root, started),
            "component_s": _component_seconds(root, started), "trainer_s": _trainer_seconds(root, started)}


COMPONENTS = ("ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher")


def _record(pipeline_root: str, started: float) -> dict:
    """The run record this benchmark's kcv-train wrote (the newest one since `started`), or {}."""
    runs = os.path.join(pipeline_root, "runs")
    records = [os.path.join(runs, n) for n in os.listdir(runs) if n.endswith(".json")] if os.path.isdir(runs) else []
    records = [r for r in records if os.path.getmtime(r) >= started]
    if not records:
        return {}
    with open(max(records, key=os.path.getmtime)) as f:
        return json.load(f)


def _component_seconds(pipeline_root: str, started: float) -> dict[str, float]:
    """Seconds each component took in the run this benchmark started (its run record): where the time goes."""
    components = _record(pipeline_root, started).get("components", {})
    return {name: float(components[name]["seconds"]) for name in COMPONENTS if "seconds" in components.get(name, {})}


def seconds_to(curve: list[tuple[int, float, float]], target: float) -> float | None:
    """Wall seconds (since kcv-train started) at the end of the earliest epoch whose pipeline-eval
    accuracy is >= target; None when no epoch reached it."""
    return min((seconds for _, seconds, acc in curve if acc >= target), default=None)


def format_seconds_to(curve: list[tuple[int, float, float]], target: float) -> str:
    seconds = seconds_to(curve, target)
    if seconds is not None:
        return f"{seconds:.0f}"
    return f"not reached (best {max(acc for *_, acc in curve):.4f})" if curve else "no curve"


LOOP_PARTS = ("input", "step", "validation", "other")


def _trainer_seconds(pipeline_root: str, started: float) -> dict[str, float]:
    """Inside the Trainer: seconds waiting for input, in train steps, in validation and the rest
    (the loop's LoopTimes, summed over phases, from the training_summary.json of the model the
    run record names: the Trainer's, not a --final_fit refit's)."""
    model = _record(pipeline_root, started).get("artifacts", {}).get("model")
    path = os.path.join(model, "training_summary.json") if model else ""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        phases = json.load(f).get("phases", [])
    return {part: sum(float(p.get("seconds", {}).get(part, 0.0)) for p in phases) for part in LOOP_PARTS}


def _spread(values: list[float]) -> str:
    """mean ± sample standard deviation (just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f} (min {min(values):.4f})"


def _plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        label = f"{row['recipe']} seed {row['seed']}"
        if row["curve"]:
            _, seconds, acc = zip(*row["curve"])
            line, = ax.plot([s / 60 for s in seconds], acc, marker=".", label=f"{label} (pipeline eval split)")
            color = line.get_color()
        else:
            color = None
        ax.plot([row["wall_s"] / 60], [row["held_out_accuracy"]], marker="*", markersize=12, color=color,
                linestyle="none", label=f"{label}: fixed held-out")
    ax.set_xlabel("wall-clock minutes since kcv-train started")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = _args()
    if not os.path.exists(args.data):
        print(f"time_to_accuracy: {args.data} is not here; nothing to measure (exit 0)")
        return
    train_dir, test_dir = _prepare(args)
    info = _harness.machine()
    rows = [_run(args, recipe, int(seed), train_dir, test_dir)
            for recipe in args.recipes.split(",") for seed in args.seeds.split(",")]
    os.makedirs(args.work_dir, exist_ok=True)
    with open(os.path.join(args.work_dir, "time_to_accuracy.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["recipe", "seed", "epoch", "wall_s", "pipeline_eval_accuracy"])
        for row in rows:
            for epoch, seconds, acc in row["curve"]:
                writer.writerow([row["recipe"], row["seed"], epoch, f"{seconds:.1f}", f"{acc:.4f}"])
    with open(os.path.join(args.work_dir, "time_to_accuracy.json"), "w") as f:
        json.dump({"machine": info, "train_images": args.train_images, "rows": rows}, f, indent=2)
    png = os.path.join(args.work_dir, "time_to_accuracy.png")
    _plot(rows, png)
    print(f"machine: {json.dumps(info)}")
    print(f"train images {args.train_images} (files 0000-{args.train_images // 10 - 1:04d} of each class), "
          f"held out {rows[0]['held_out_images']} (from 4000.jpg of each class)")
    print("| recipe | seed | wall s | CPU s | held-out accuracy | last pipeline-eval accuracy | "
          f"s to {args.target:.0%} (pipeline eval) | "
          + " | ".join(f"{c} s" for c in COMPONENTS) + " | "
          + " | ".join(f"Trainer {p} s" for p in LOOP_PARTS) + " |")
    print("|---|---|---|---|---|---|---|" + "---|" * (len(COMPONENTS) + len(LOOP_PARTS)))
    for row in rows:
        last = f"{row['curve'][-1][2]:.4f}" if row["curve"] else "-"
        parts = " | ".join(f"{row['component_s'][c]:.0f}" if c in row["component_s"] else "-" for c in COMPONENTS)
        loop = " | ".join(f"{row['trainer_s'][p]:.0f}" if p in row["trainer_s"] else "-" for p in LOOP_PARTS)
        print(f"| {row['recipe']} | {row['seed']} | {row['wall_s']:.0f} | {row['cpu_s']:.0f} | "
              f"{row['held_out_accuracy']:.4f} | {last} | {format_seconds_to(row['curve'], args.target)} | "
              f"{parts} | {loop} |")
    for recipe in dict.fromkeys(row["recipe"] for row in rows):
        mine = [row for row in rows if row["recipe"] == recipe]
        print(f"{recipe}: held-out accuracy {_spread([r['held_out_accuracy'] for r in mine])} over "
              f"{len(mine)} seed(s); wall {np.mean([r['wall_s'] for r in mine]):.0f} s a seed")
    print(f"wrote {png}, time_to_accuracy.csv and .json in {args.work_dir}")


if __name__ == "__main__":
    main()
