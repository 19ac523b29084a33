"""GPU check for the Trainer's driver (pipelines.loop): ResNet-18 CIFAR training images/s.

    python scripts/gpu_check.py [--batch=256] [--steps=60] [--allow_cpu]

On a machine with GPUs, in under 5 minutes:
  1. one GPU (OneDeviceStrategy): float32 without XLA, then mixed_float16 + XLA (jit_compile);
  2. MirroredStrategy on all GPUs present, mixed_float16, global batch = --batch x GPUs (XLA
     first; if XLA cannot compile the replicated step, the failure is printed and the step is
     measured without it), with the scaling against one GPU;
and checks that every loss was finite and that the replicas ended with identical weights.
The model is what the Trainer builds for resnet18_cifar10 (normalise -> kcv ResNet-18 cifar ->
float32 logits), trained with CoupledSGD through pipelines.loop.train, fed one batch held in
device memory, so the numbers are the training step's, not the input pipeline's
(benchmarks/input_pipeline.py and benchmarks/gpu_check.py measure that).

Without a GPU it prints a message and exits 0. --allow_cpu runs the same code with tiny sizes on
the CPU (two logical CPU devices stand in for two GPUs), to check the script itself.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
BUDGET_S = 270  # stop starting new measurements after this, to stay under 5 minutes


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="batch per GPU (default 256)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per measurement (default 60)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (compilation) (default 10)")
    parser.add_argument("--allow_cpu", action="store_true", help="without a GPU, run tiny sizes on the CPU")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    start_time = time.perf_counter()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print("gpu_check: no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty); "
              "nothing to measure. Run it where TensorFlow sees a GPU (pip install 'tensorflow[and-cuda]'), "
              "or pass --allow_cpu to check the script on the CPU.")
        return 0
    if gpus:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        devices = [f"/gpu:{i}" for i in range(len(gpus))]
    else:  # --allow_cpu: two logical CPUs (set before TensorFlow initialises) and tiny sizes
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        devices = ["/cpu:0", "/cpu:1"]
        args.batch, args.steps, args.warmup = 8, 3, 1

    import keras
    import numpy as np

    from kcv.models import resnet18
    from kcv.optim.coupled_decay import CoupledSGD
    from pipelines import loop

    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    print(f"gpu_check: TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"{len(gpus)} GPU(s): {', '.join(names) or 'none (--allow_cpu: 2 logical CPUs)'}", flush=True)
    low = "mixed_float16" if gpus else "mixed_bfloat16"  # float16 on CPUs is emulated and very slow

    def build(policy: str, jit: bool) -> keras.Model:
        keras.mixed_precision.set_global_policy(policy)
        try:  # what pipelines/tasks/classification.build_model makes for resnet18_cifar10
            inputs = keras.Input((32, 32, 3), name="images")
            x = keras.layers.Normalization(mean=[125.0] * 3, variance=[64.0**2] * 3, name="normalize")(inputs)
            x = resnet18(num_classes=10, input_shape=(32, 32, 3), variant="cifar")(x)
            model = keras.Model(inputs, keras.layers.Activation("linear", dtype="float32", name="logits")(x))
        finally:
            keras.mixed_precision.set_global_policy("float32")
        model.compile(optimizer=CoupledSGD(learning_rate=0.05, momentum=0.9, l2=5e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
        return model

    class Clock(keras.callbacks.Callback):
        """Time from the end of the warm-up steps to the end of the last step (logs are synced)."""

        def __init__(self, warmup: int):
            super().__init__()
            self.warmup, self.seen, self.t0, self.t1 = warmup, 0, None, None
            self.losses: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            self.losses.append(float(logs["loss"]))
            if self.seen == self.warmup:
                self.t0 = time.perf_counter()
            self.t1 = time.perf_counter()

    rng = np.random.default_rng(0)

    def measure(strategy, policy: str, jit: bool, per_replica: int):
        """(images/s, finite losses, model) for `args.steps` timed steps after the warm-up."""
        batch = per_replica * strategy.num_replicas_in_sync
        x = tf.constant(rng.uniform(0, 255, (batch, 32, 32, 3)).astype("float32"))
        y = tf.constant(rng.integers(0, 10, batch).astype("int32"))
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
        with strategy.scope():
            model = build(policy, jit)
        clock = Clock(args.warmup)
        loop.train(model, data, epochs=1, steps_per_epoch=args.warmup + args.steps, callbacks=[clock], verbose=0)
        rate = args.steps * batch / (clock.t1 - clock.t0)
        return rate, all(np.isfinite(clock.losses)), model

    def line(label: str, rate: float, extra: str = "") -> None:
        print(f"  {label:52s} {rate:10.0f} images/s{extra}", flush=True)

    failures = []
    one = tf.distribute.OneDeviceStrategy(devices[0])
    print(f"1. one device ({devices[0]}), batch {args.batch}:", flush=True)
    fp32, ok, _ = measure(one, "float32", False, args.batch)
    line("float32, no XLA", fp32)
    failures += [] if ok else ["one device float32: non-finite loss"]
    fast, ok, _ = measure(one, low, True, args.batch)
    line(f"{low} + XLA", fast, f"   ({fast / fp32:.2f}x float32)")
    failures += [] if ok else [f"one device {low}: non-finite loss"]

    if len(devices) < 2:
        print("2. MirroredStrategy: skipped, only one GPU", flush=True)
    elif time.perf_counter() - start_time > BUDGET_S:
        print("2. MirroredStrategy: skipped, out of the 5-minute budget", flush=True)
    else:
        mirrored = tf.distribute.MirroredStrategy(devices)
        n = mirrored.num_replicas_in_sync
        print(f"2. MirroredStrategy on {n} devices, global batch {args.batch * n} ({args.batch} per replica):",
              flush=True)
        try:
            rate, ok, model = measure(mirrored, low, True, args.batch)
            label = f"{low} + XLA"
        except Exception as err:  # noqa: BLE001 - report and measure without XLA
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [""]
            reason = next((ln for ln in lines if "XLA" in ln or "ompil" in ln or "support" in ln), lines[-1])
            print(f"  XLA under MirroredStrategy failed: {type(err).__name__}: {reason[:200]}", flush=True)
            rate, ok, model = measure(mirrored, low, False, args.batch)
            label = f"{low}, no XLA"
        line(label, rate, f"   (scaling {rate / (n * fast):.2f} of {n} x one device)")
        failures += [] if ok else ["mirrored: non-finite loss"]
        kernel = model.trainable_variables[0]
        copies = [c.numpy() for c in mirrored.experimental_local_results(kernel.value)]
        if not all(np.array_equal(copies[0], c) for c in copies[1:]):
            failures.append("mirrored: the replicas' weights differ")
    elapsed = time.perf_counter() - start_time
    print(f"gpu_check: {'OK' if not failures else 'FAILED: ' + '; '.join(failures)} in {elapsed:.0f}s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
