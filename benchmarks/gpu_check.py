"""GPU check: CIFAR training (ResNet-18 or cifar10_fast's net) through pipelines.loop.train, the Trainer's only driver.

    python benchmarks/gpu_check.py [--model=resnet18|fast_cifar] [--batch=512] [--steps=50] [--quick] [--json=PATH]
    python benchmarks/gpu_check.py --allow_cpu      # no GPU: tiny sizes on 2 logical CPUs

The model is the Trainer's classifier, `kcv.models.classifier.image_classifier("resnet18",
variant="cifar")` (normalise -> kcv ResNet-18 cifar -> float32 logits; `--model=fast_cifar`: the
cifar10_fast net, with Nesterov and label smoothing 0.2 as that preset), compiled with CoupledSGD
and trained only by `pipelines.loop.train` (never `fit`). On the machine's GPUs it measures images/s of:
  1. the kcv input pipeline alone (classification_dataset, cifar augmentation, batch B, on
     generated CIFAR-like TFRecords, cached in memory after the first pass);
  2. one GPU, float32 without XLA, fed from memory (one batch held in host memory);
  3. one GPU, mixed_float16 + XLA (jit_compile), fed from memory: the training step alone;
  4. the same model fed by the input pipeline: 4 / 3 = 1.00 means the pipeline is not the
     bottleneck (3 and 4 alternate within one training run, so they share the machine's state);
  5. MirroredStrategy on every GPU, mixed_float16 (+ XLA; if XLA cannot compile the replicated
     step, the error is printed and it runs without), global batch B x GPUs, fed from memory:
     the scaling against n x (3), and whether every replica ends with identical weights.
  6. time to accuracy on real CIFAR-10 (when --data, the CIFAR-10 training tarball, is here):
     each of --accuracy_recipes runs the whole kcv-train pipeline once (seed 0) through
     benchmarks/time_to_accuracy.py, in mixed precision, and reports the wall seconds to the
     first epoch at --target on the pipeline's eval split and the accuracy on the fixed held-out
     10,000 (files 4000-4999 of each class). Without the tarball it says so and skips this part.
Targets on an H100-class GPU: >= 15,000 images/s for 4, and 4 / 3 >= 0.9. Parts 1-5 take about 5
minutes; part 6 adds one kcv-train run per recipe (its data ingestion, 10 epochs of cifar10_fast and
4 of the book's recipe; not yet timed on a GPU: `--accuracy_recipes=cifar10_fast` runs only the first).
It prints one table with the GPU names; it exits 1 if a loss was NaN/inf or the replicas'
weights differ, 0 otherwise. Without a GPU it prints one line and exits 0; --allow_cpu then runs
the same code with tiny sizes on the CPU (two logical CPUs stand in for two GPUs,
mixed_bfloat16 instead of float16, no XLA under MirroredStrategy) to check the script itself.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

TARGET = 15_000  # images/s fed by the input pipeline, H100-class GPU
BUDGET_S = 270  # no new measurement starts after this, to stay near 5 minutes
NO_GPU = ("gpu_check: no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty); "
          "nothing to measure: run it where TensorFlow sees a GPU (pip install 'tensorflow[and-cuda]'), "
          "or pass --allow_cpu to check the script on the CPU")


# --model: the registered builder's arguments, the loss's label smoothing and Nesterov, as the presets train them
MODELS = {"resnet18": ({"variant": "cifar"}, 0.0, False), "fast_cifar": ({}, 0.2, True)}


def parse_args(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--model", choices=tuple(MODELS), default="resnet18",
                   help="resnet18 (the book's Kaggle CIFAR-10 recipe) or fast_cifar (cifar10_fast's net)")
    p.add_argument("--batch", type=int, default=512, help="batch per GPU (default 512)")
    p.add_argument("--steps", type=int, default=50, help="timed steps per round and measurement (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first: compilation (default 10)")
    p.add_argument("--examples", type=int, default=5000, help="generated training images (default 5000)")
    p.add_argument("--data", default=None, help="CIFAR-10 training tarball for part 6 (default: time_to_accuracy's, "
                   "../shared/data/cifar10-train-jpeg.tar.gz)")
    p.add_argument("--accuracy_recipes", default="cifar10_fast,resnet18_cifar10:4",
                   help="EXPERIMENT[:EPOCHS] list for part 6; '' skips it (default: the fast recipe, and the "
                   "book's for 4 epochs)")
    p.add_argument("--target", type=float, default=0.94, help="accuracy whose time part 6 reports (default 0.94)")
    p.add_argument("--work_dir", default=None, help="part 6's extracted data and runs (default: a temporary folder)")
    p.add_argument("--allow_cpu", action="store_true",
                   help="without a GPU, run tiny sizes on two logical CPUs (checks the script)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps = 30
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    t_start = time.perf_counter()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print(NO_GPU)
        return 0
    on_gpu = bool(gpus)
    if on_gpu:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        devices = [f"/gpu:{i}" for i in range(len(gpus))]
    else:  # --allow_cpu: two logical CPUs, set before TensorFlow initialises its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        devices = ["/cpu:0", "/cpu:1"]
    if not on_gpu or args.smoke:
        args.batch, args.examples, args.steps, args.warmup = 4, 64, 2, 1
    rounds = args.rounds or (1 if args.smoke or not on_gpu else 2 if args.quick else 3)
    drain = 2 if on_gpu and not args.smoke else 0  # untimed steps when the feed switches

    import tempfile

    import keras
    import numpy as np

    from input_pipeline import write_data
    from kcv.data.input import classification_dataset
    from kcv.models.classifier import image_classifier
    from kcv.losses import classification_loss
    from kcv.optim.coupled_decay import CoupledSGD
    from pipelines import loop
    from resnet18_train import MEAN, NUM_CLASSES, SHAPE, STD

    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    machine = (", ".join(f"{d} {n}" for d, n in zip(devices, names)) if on_gpu
               else "no GPU: --allow_cpu, 2 logical CPUs")
    print(f"gpu_check: TensorFlow {tf.__version__}, Keras {keras.__version__}; {len(gpus)} GPU(s): {machine}",
          flush=True)
    info = H.machine()
    info.update(H.versions("tensorflow", "keras"), gpus=names, devices=devices,
                settings={"batch": args.batch, "examples": args.examples, "steps": args.steps,
                          "warmup": args.warmup, "rounds": rounds, "driver": "pipelines.loop.train"})
    low = "mixed_float16" if on_gpu else "mixed_bfloat16"  # float16 on CPUs is emulated and very slow
    b = args.batch

    tmp = tempfile.TemporaryDirectory(prefix="kcv_gpu_check_")
    H.log(f"writing {args.examples} generated images as TFRecords")
    folder = write_data(tmp.name, args.examples)
    # One dataset object for every use: its in-memory cache, once complete, serves every iterator.
    pipeline = classification_dataset(folder, batch_size=b, training=True, image_size=SHAPE[:2],
                                      augment="cifar").repeat()

    # 1. the input pipeline alone
    iterator = iter(pipeline)
    for _ in range(2 * max(1, args.examples // b)):  # the first pass fills the cache
        next(iterator)
    start = time.perf_counter()
    for _ in range(args.steps * rounds):
        images, _ = next(iterator)
    images.numpy()
    pipeline_rate = args.steps * rounds * b / (time.perf_counter() - start)
    del iterator  # no background prefetching while the training steps are timed
    H.log(f"input pipeline alone: {pipeline_rate:.0f} images/s")

    rng = np.random.default_rng(0)

    def from_memory(global_batch: int):
        x = rng.uniform(0, 255, (global_batch, *SHAPE)).astype("float32")
        y = rng.integers(0, NUM_CLASSES, global_batch).astype("int32")
        return tf.data.Dataset.from_tensors((x, y)).repeat()  # one batch in host memory, no pipeline work

    def build(strategy, policy: str, jit: bool) -> keras.Model:
        keras.mixed_precision.set_global_policy(policy)
        try:
            with strategy.scope():
                kwargs, smoothing, nesterov = MODELS[args.model]
                model = image_classifier(args.model, num_classes=NUM_CLASSES, input_shape=SHAPE, mean=MEAN,
                                         std=STD, **kwargs)
                model.compile(optimizer=CoupledSGD(learning_rate=0.01, momentum=0.9, nesterov=nesterov, l2=5e-4),
                              loss=classification_loss(smoothing),
                              metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], jit_compile=jit)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        return model

    class Clock(keras.callbacks.Callback):
        """The time at the end of every step (pipelines.loop reads each step's logs back, so a
        step has finished on the device when its callback runs) and every loss."""

        def __init__(self):
            super().__init__()
            self.ends: list[float] = []
            self.losses: list[float] = []

        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            self.losses.append(float(logs["loss"]))

    def measure(strategy, policy: str, jit: bool, feeds: dict):
        """Train one model with pipelines.loop.train on a schedule of feeds: a warm-up on each,
        then `rounds` rounds of (`drain` untimed + `args.steps` timed steps) on each in turn.
        Returns ({feed: [images/s per round]}, all losses finite, model)."""
        global_batch = b * strategy.num_replicas_in_sync
        labels = list(feeds)
        # one entry per step: (feed, round of a timed step or None)
        schedule: list[tuple[str, int | None]] = [(f, None) for f in labels for _ in range(args.warmup)]
        for r in range(rounds):
            for f in labels:
                schedule += [(f, None)] * drain + [(f, r)] * args.steps
        choice = tf.data.Dataset.from_tensor_slices(np.array([labels.index(f) for f, _ in schedule], np.int64))
        data = tf.data.Dataset.choose_from_datasets([feeds[f] for f in labels], choice)
        model = build(strategy, policy, jit)
        clock = Clock()
        loop.train(model, data, epochs=1, steps_per_epoch=len(schedule), callbacks=[clock], verbose=0)
        rates: dict[str, list[float]] = {f: [] for f in labels}
        i = 0
        while i < len(schedule):  # each run of timed steps is one sample
            if schedule[i][1] is None:
                i += 1
                continue
            j = i
            while j < len(schedule) and schedule[j] == schedule[i]:
                j += 1
            rates[schedule[i][0]].append((j - i) * global_batch / (clock.ends[j] - clock.ends[i]))
            i = j
        return rates, bool(np.all(np.isfinite(clock.losses))), model

    failures: list[str] = []
    one = tf.distribute.OneDeviceStrategy(devices[0])
    H.log(f"one device ({devices[0]}): float32, no XLA, fed from memory")
    fp32, ok, _ = measure(one, "float32", False, {"memory": from_memory(b)})
    failures += [] if ok else ["float32: a loss was NaN/inf"]
    H.log(f"one device ({devices[0]}): {low} + XLA, fed from memory and by the input pipeline")
    fast, ok, _ = measure(one, low, True, {"memory": from_memory(b), "pipeline": pipeline})
    failures += [] if ok else [f"{low} + XLA: a loss was NaN/inf"]

    table = H.Table(f"GPU check: {args.model} CIFAR training via pipelines.loop.train, batch {b} per device, "
                    f"on {machine}", "images/s", higher_better=True, ratio_label="vs row 3")
    table.add(f"1. input pipeline alone (batch {b})", [pipeline_rate])
    table.add("2. 1 device, float32, no XLA, fed from memory", fp32["memory"])
    base = table.add(f"3. 1 device, {low} + XLA, fed from memory", fast["memory"]).median
    fed = table.add(f"4. 1 device, {low} + XLA, fed by the input pipeline", fast["pipeline"]).median
    for row in table.rows[:2] + table.rows[3:]:
        row.ratio = f"{row.stats.median / base:.2f}x"

    mirrored_note = None
    if len(devices) < 2:
        mirrored_note = "5. MirroredStrategy: skipped, only one GPU"
    elif time.perf_counter() - t_start > BUDGET_S:
        mirrored_note = f"5. MirroredStrategy: skipped, past the {BUDGET_S} s budget"
    else:
        mirrored = tf.distribute.MirroredStrategy(devices)
        n = mirrored.num_replicas_in_sync
        feeds = {"memory": from_memory(b * n)}
        label = f"{low} + XLA"
        if not on_gpu:  # XLA cannot compile the collectives on logical CPUs
            label = f"{low}, no XLA (logical CPUs)"
            rates, ok, model = measure(mirrored, low, False, feeds)
        else:
            H.log(f"MirroredStrategy on {n} GPUs: {low} + XLA, global batch {b * n}")
            try:
                rates, ok, model = measure(mirrored, low, True, feeds)
            except Exception as err:  # noqa: BLE001 - report it, then measure without XLA
                lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [""]
                reason = next((ln for ln in lines if "XLA" in ln or "ompil" in ln or "support" in ln), lines[-1])
                print(f"gpu_check: XLA under MirroredStrategy failed: {type(err).__name__}: {reason[:200]}",
                      flush=True)
                label = f"{low}, no XLA (XLA failed)"
                rates, ok, model = measure(mirrored, low, False, feeds)
        failures += [] if ok else ["MirroredStrategy: a loss was NaN/inf"]
        stats = table.add(f"5. MirroredStrategy x {n}, {label}, fed from memory (global batch {b * n})",
                          rates["memory"])
        scaling = stats.median / (n * base)
        table.rows[-1].ratio = f"{stats.median / base:.2f}x"
        table.rows[-1].note = f"scaling {scaling:.2f} of {n} x row 3"
        differ = []
        for var in loop.state_variables(model):  # weights, BatchNorm statistics, optimizer slots
            copies = [np.asarray(c) for c in mirrored.experimental_local_results(var.value)]
            if not all(np.array_equal(copies[0], c) for c in copies[1:]):
                differ.append(var.path)
        mirrored_note = (f"[{'MET ' if not differ else 'MISS'}] MirroredStrategy: the {n} replicas end with "
                         f"identical weights, BatchNorm statistics and optimizer slots"
                         + (f" (differ: {', '.join(differ[:5])})" if differ else ""))
        failures += [f"MirroredStrategy: the replicas' {', '.join(differ[:5])} differ"] if differ else []
        info["mirrored"] = {"replicas": n, "label": label, "scaling": round(scaling, 3), "differ": differ}

    accuracy_table, accuracy_notes, accuracy_failures = time_to_accuracy_part(args, on_gpu, tmp.name, info)
    failures += accuracy_failures
    if on_gpu and not args.smoke:
        verdicts = [H.verdict("training fed by the input pipeline (row 4)", fed, TARGET, True, unit=" img/s"),
                    H.verdict("pipeline-fed / memory-fed, row 4 / row 3 (pipeline not the bottleneck)",
                              fed / base, 0.9, True),
                    f"[info] {low} + XLA / float32 (row 3 / row 2): {base / table.rows[1].stats.median:.2f}x"]
    else:
        verdicts = ["[info] tiny sizes (--allow_cpu or --smoke): the numbers only show that the script works"]
    verdicts.append(mirrored_note)
    verdicts += accuracy_notes
    verdicts += [f"[FAIL] {f}" for f in failures]
    tables = [table] + ([accuracy_table] if accuracy_table is not None else [])
    info["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    tmp.cleanup()
    H.finish(tables, info, args.json, verdicts)
    print(f"gpu_check: {'OK' if not failures else 'FAILED: ' + '; '.join(failures)} in {info['elapsed_s']:.0f} s",
          flush=True)
    return 1 if failures else 0


def _cifar_tarball(args) -> str | None:
    """--data, else the shared tarball beside the checkout or inside it (a device machine gets
    the checkout's own shared/ folder); None when none is here."""
    import time_to_accuracy as tta

    name = os.path.basename(tta.DEFAULT_DATA)
    candidates = [args.data] if args.data else [tta.DEFAULT_DATA, os.path.join(tta.REPO, "shared", "data", name)]
    return next((c for c in candidates if os.path.exists(c)), None)


def time_to_accuracy_part(args, on_gpu: bool, scratch: str, info: dict):
    """Part 6: each recipe through kcv-train on real CIFAR-10 (time_to_accuracy.py's one runner),
    in mixed precision. Returns (a Table or None when skipped, verdict lines, failures)."""
    import argparse

    import time_to_accuracy as tta

    recipes = [r for r in args.accuracy_recipes.split(",") if r]
    if not recipes:
        return None, ["[info] 6. time to accuracy: skipped (--accuracy_recipes is empty)"], []
    data = _cifar_tarball(args)
    if data is None:
        where = args.data or tta.DEFAULT_DATA
        print(f"gpu_check: part 6 (time to accuracy) skipped: {where} is not here (pass --data=TARBALL)", flush=True)
        return None, [f"[info] 6. time to accuracy: skipped, no CIFAR-10 tarball ({where})"], []
    small = not on_gpu or args.smoke  # checks the script: a few hundred images, one epoch
    if small:
        recipes = [f"{r.partition(':')[0]}:1" for r in recipes]
    run_args = argparse.Namespace(
        data=data, work_dir=os.path.abspath(args.work_dir or os.path.join(scratch, "time_to_accuracy")),
        train_images=200 if small else 40000, test_images=100 if small else 10000,
        # float16 on the GPU for every recipe (cifar10_fast's "auto" picks it too); the CPU keeps auto/its preset
        extra_flags=("--mixed_precision=float16" if on_gpu else "") + (" --batch_size=32" if small else ""))
    train_dir, test_dir = tta._prepare(run_args)
    table = H.Table(f"GPU check: time to {args.target:.0%} on real CIFAR-10 ({run_args.train_images} training "
                    f"images, {run_args.test_images} held out), one kcv-train run each", "wall s",
                    higher_better=False, ratio_label="")
    rows, notes, failures = [], [], []
    for recipe in recipes:
        H.log(f"time to accuracy: {recipe}")
        try:
            row = tta._run(run_args, recipe, 0, train_dir, test_dir)
        except SystemExit as err:  # the runner's error (a failed kcv-train): its first line and kcv-train's own
            lines = str(err).splitlines()
            reason = next((ln for ln in reversed(lines) if "kcv-train: error" in ln), lines[-1])
            failures.append(f"time to accuracy, {recipe}: {lines[0]} {reason.strip()}")
            continue
        reached = tta.seconds_to(row["curve"], args.target)
        when = tta.format_seconds_to(row["curve"], args.target) + (" s" if reached is not None else "")
        table.add(f"{recipe}: whole run", [row["wall_s"]],
                  note=f"held-out {row['held_out_accuracy']:.4f}; {args.target:.0%} (pipeline eval): {when}")
        notes.append(f"[info] 6. {recipe}: {args.target:.0%} on the pipeline eval split: {when}; "
                     f"held-out {row['held_out_accuracy']:.4f} after {row['wall_s']:.0f} s")
        rows.append({k: row[k] for k in ("recipe", "wall_s", "held_out_accuracy", "component_s", "trainer_s")}
                    | {"seconds_to_target": reached})
    info["time_to_accuracy"] = {"target": args.target, "train_images": run_args.train_images, "rows": rows}
    return table, notes, failures


if __name__ == "__main__":
    sys.exit(main())
