"""GPU check: ResNet-18 CIFAR training images/s with mixed precision + XLA, and the input pipeline.

    python benchmarks/gpu_check.py [--quick] [--json=PATH]

Exits 0 with a message when TensorFlow sees no GPU (`--allow_cpu` runs the same steps on the CPU
with tiny sizes, to check the script itself). Runs in well under 5 minutes on one GPU:
  1. the kcv input pipeline alone (classification_dataset, cifar augmentation, batch B) on
     generated CIFAR-like TFRecords: images/s;
  2. the trainer's step (kcv ResNet-18 cifar as the trainer builds it, mixed_float16 on GPU,
     jit_compile=True, CoupledSGD) fed from one batch in GPU memory: images/s;
  3. the same step fed by the input pipeline (`model.fit` over it, steps_per_execution to keep
     the GPU busy): images/s, and the ratio 3 / 2 (1.00 = the pipeline is not the bottleneck).
Target on an H100-class GPU: >= 15,000 images/s for 3, with 3 / 2 >= 0.9.
Also: float32 without XLA for the same step, to show what mixed precision + XLA buy.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

TARGET = 15_000


def parse_args(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--batch", type=int, default=512, help="global batch (default 512)")
    p.add_argument("--examples", type=int, default=5000, help="generated training images (cached in memory)")
    p.add_argument("--steps", type=int, default=50, help="timed steps per round")
    p.add_argument("--allow_cpu", action="store_true", help="run on the CPU when no GPU is present (tiny sizes)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps = 30
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print("gpu_check: no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty); "
              "nothing to measure. Run it on a machine with a GPU and tensorflow[and-cuda].")
        return 0
    on_gpu = bool(gpus)
    if not on_gpu or args.smoke:
        args.batch, args.examples, args.steps = 16, 256, 2
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    import keras
    import numpy as np

    from input_pipeline import write_data
    from kcv.data.input import classification_dataset
    from kcv.optim.coupled_decay import CoupledSGD
    from resnet18_train import kcv_model

    info = H.machine()
    info.update(H.versions("tensorflow", "keras"), gpus=[g.name for g in gpus],
                gpu_details=[tf.config.experimental.get_device_details(g) for g in gpus],
                settings={"batch": args.batch, "examples": args.examples, "steps": args.steps})
    t_start = time.perf_counter()
    import tempfile
    tmp = tempfile.TemporaryDirectory(prefix="kcv_gpu_check_")
    H.log(f"writing {args.examples} images")
    folder = write_data(tmp.name, args.examples)
    b = args.batch

    def dataset():
        # cached after the first pass, so a few thousand images stand for any dataset size
        return classification_dataset(folder, batch_size=b, training=True, image_size=(32, 32),
                                      augment="cifar").repeat()

    # 1. pipeline alone
    it = iter(dataset())
    for _ in range(2 * max(1, args.examples // b)):  # the first pass fills the cache
        next(it)
    start = time.perf_counter()
    for _ in range(args.steps):
        x, _ = next(it)
    x.numpy()
    pipeline_ips = args.steps * b / (time.perf_counter() - start)
    H.log(f"pipeline alone: {pipeline_ips:.0f} images/s")

    def build(policy: str, jit: bool):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = kcv_model()
        finally:
            keras.mixed_precision.set_global_policy("float32")
        model.compile(optimizer=CoupledSGD(learning_rate=0.01, momentum=0.9, l2=5e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                      jit_compile=jit, steps_per_execution=10 if on_gpu else 1)
        return model

    policy = "mixed_float16" if on_gpu else "mixed_bfloat16"
    rng = np.random.default_rng(0)
    x_mem = tf.constant(rng.uniform(0, 255, (b, 32, 32, 3)).astype("float32"))
    y_mem = tf.constant(rng.integers(0, 10, b).astype("int32"))
    mem_ds = tf.data.Dataset.from_tensors((x_mem, y_mem)).repeat().prefetch(2)

    def fit_rate(model, ds) -> float:
        # warm-up: compile, and at least one full pass so the pipeline's cache is complete
        warm = max(10, args.steps // 2, 2 * args.examples // b) if on_gpu else 1
        model.fit(ds, steps_per_epoch=warm, epochs=1, verbose=0, shuffle=False)
        start = time.perf_counter()
        model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
        return args.steps * b / (time.perf_counter() - start)

    fast = build(policy, jit=True)
    pipe_ds = dataset()  # one dataset object: its completed cache is shared by every fit() call
    results = {}
    rounds = 1 if args.smoke or not on_gpu else 2
    for r in range(rounds):  # interleave memory-fed and pipeline-fed runs of the same model
        results.setdefault("memory", []).append(fit_rate(fast, mem_ds))
        results.setdefault("pipeline", []).append(fit_rate(fast, pipe_ds))
        H.log(f"round {r + 1}: memory {results['memory'][-1]:.0f}, pipeline {results['pipeline'][-1]:.0f} images/s")
    slow = build("float32", jit=False)
    results["fp32"] = [fit_rate(slow, mem_ds)]
    table = H.Table(f"GPU check: ResNet-18 cifar training, batch {b} ({'GPU' if on_gpu else 'CPU, --allow_cpu'})",
                    "images/s", higher_better=True, ratio_label="this / mem")
    table.add("input pipeline alone", [pipeline_ips])
    table.add(f"train {policy} + XLA, fed from memory", results["memory"])
    table.add(f"train {policy} + XLA, fed by the pipeline", results["pipeline"])
    table.add("train float32, no XLA, fed from memory", results["fp32"])
    base = table.rows[1].stats.median
    for row in table.rows[2:]:
        row.ratio = f"{row.stats.median / base:.2f}x"
    fed = table.rows[2].stats.median
    verdicts = [H.verdict("training fed by the pipeline", fed, TARGET, True, unit=" img/s"),
                H.verdict("pipeline-fed / memory-fed (pipeline not the bottleneck)", fed / base, 0.9, True)]
    if not on_gpu:
        verdicts = ["[info] CPU run (--allow_cpu): numbers only check that the script works"]
    info["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    tmp.cleanup()
    H.finish([table], info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
