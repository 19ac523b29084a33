"""ResNet-18 (CIFAR variant) train step and inference: kcv vs a plain Keras build vs PyTorch.

    python benchmarks/resnet18_train.py [--quick] [--json=PATH]

Contenders (all on the same random batch, 32x32x3 in [0, 255], 10 classes, normalisation inside):
  kcv                      kcv.models.classifier.image_classifier("resnet18", variant="cifar"), as the
                           trainer builds and compiles it (Normalization -> kcv ResNet-18 cifar ->
                           float32 logits, CoupledSGD momentum 0.9, L2 5e-4, sparse CE from logits
                           + accuracy): oneDNN on, float32, no XLA
  kcv oneDNN off           the same with TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's default on this CPU)
  kcv XLA                  compile(jit_compile=True), oneDNN on          (full run only)
  kcv XLA oneDNN off       compile(jit_compile=True), oneDNN off         (full run only)
  kcv mixed_bfloat16       global policy mixed_bfloat16 (logits float32), oneDNN on
  keras plain              the same network stacked plainly in Keras (Conv2D "same" with bias, stock
                           BatchNormalization, keras SGD), oneDNN on
  torch channels-last      the book's d2l.resnet18 written in PyTorch, model and input in
                           torch.channels_last, SGD momentum 0.9, weight_decay 5e-4; torch threads =
                           os.cpu_count() (TensorFlow's intra-op default). Skipped if torch is missing.
Train step at batch 128 (one optimizer update, loss read back); inference at batch 256
(training=False / eval mode, outputs read back).

Each environment (oneDNN on, oneDNN off, torch) is one worker subprocess; the parent calls the
contenders one at a time, rotating the order each round, after warm-up, so they share the noise.
Reported: images/s median, IQR and min-max over rounds, and kcv / peer (>1: kcv faster).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

NUM_CLASSES = 10
SHAPE = (32, 32, 3)
LR, MOMENTUM, WD = 0.01, 0.9, 5e-4
# Per-channel statistics the Normalization layer holds (any fixed numbers do for timing).
MEAN, STD = (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)

KCV = "kcv"
CONTENDERS = {  # name -> (worker group, options)
    KCV: ("onednn", {}),
    "kcv oneDNN off": ("nodnn", {}),
    "kcv XLA": ("onednn", {"xla": True}),
    "kcv XLA oneDNN off": ("nodnn", {"xla": True}),
    "kcv mixed_bfloat16": ("onednn", {"bf16": True}),
    "keras plain": ("onednn", {"plain": True}),
    "torch channels-last": ("torch", {}),
}
QUICK_SKIP = ("kcv XLA", "kcv XLA oneDNN off")
GROUP_ENV = {"onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"}, "nodnn": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "torch": {}}


def parse_args(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--train_batch", type=int, default=128)
    p.add_argument("--infer_batch", type=int, default=256)
    p.add_argument("--worker", help=H.argparse.SUPPRESS)
    p.add_argument("--names", help=H.argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.train_batch, args.infer_batch = 4, 8
    return args


# ---- TensorFlow side ----------------------------------------------------------------------------
def kcv_model(bf16: bool = False):
    """The classifier the trainer builds (kcv.models.classifier.image_classifier: normalise ->
    ResNet-18 cifar -> float32 logits); under mixed_bfloat16 when `bf16`."""
    import keras
    from kcv.models.classifier import image_classifier

    if bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        return image_classifier("resnet18", num_classes=NUM_CLASSES, input_shape=SHAPE, mean=MEAN, std=STD,
                                variant="cifar", name="kcv_resnet18")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def plain_keras_resnet18():
    """The same network written the obvious way: Conv2D "same" (with bias), stock BN, ReLU."""
    import keras
    import numpy as np
    from keras import layers

    def block(x, filters, strides):
        y = layers.Conv2D(filters, 3, strides, padding="same")(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(y))
        if strides != 1 or x.shape[-1] != filters:
            x = layers.Conv2D(filters, 1, strides)(x)
        return layers.ReLU()(layers.Add()([y, x]))

    inputs = keras.Input(SHAPE)
    x = layers.Normalization(mean=list(MEAN), variance=list(np.square(STD)))(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(64, 3, padding="same")(x)))
    for filters, strides in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = block(x, filters, strides)
        x = block(x, filters, 1)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(NUM_CLASSES)(x), name="plain_resnet18")


def tf_setup(args, names: list[str]):
    import time

    import keras
    import numpy as np
    import tensorflow as tf
    from kcv.optim.coupled_decay import CoupledSGD

    rng = np.random.default_rng(0)
    x_train = rng.uniform(0, 255, (args.train_batch, *SHAPE)).astype("float32")
    y_train = rng.integers(0, NUM_CLASSES, args.train_batch).astype("int32")
    x_infer = rng.uniform(0, 255, (args.infer_batch, *SHAPE)).astype("float32")
    contenders = {}
    for name in names:
        opts = CONTENDERS[name][1]
        if opts.get("plain"):
            model = plain_keras_resnet18()
            opt = keras.optimizers.SGD(LR, momentum=MOMENTUM, weight_decay=WD)
        else:
            model = kcv_model(bf16=opts.get("bf16", False))
            opt = CoupledSGD(learning_rate=LR, momentum=MOMENTUM, l2=WD)
        model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                      jit_compile=bool(opts.get("xla", False)))

        def train(model=model):
            start = time.perf_counter()
            model.train_on_batch(x_train, y_train)  # returns Python floats: the step has finished
            return time.perf_counter() - start

        def infer(model=model):
            start = time.perf_counter()
            model.predict_on_batch(x_infer)  # numpy out
            return time.perf_counter() - start

        contenders[f"{name}|train"] = train
        contenders[f"{name}|infer"] = infer
    info = {"tensorflow": tf.__version__, "keras": keras.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "onednn_enabled": H.onednn_enabled(),
            "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}
    return contenders, info


# ---- PyTorch side -------------------------------------------------------------------------------
def torch_setup(args, names: list[str]):
    import time

    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)

    class Residual(nn.Module):  # the book's Residual: conv-BN-ReLU-conv-BN (+ 1x1 conv), ReLU
        def __init__(self, cin, cout, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, stride=strides)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.conv3 = nn.Conv2d(cin, cout, 1, stride=strides) if use_1x1conv else None
            self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return F.relu(y + (self.conv3(x) if self.conv3 is not None else x))

    def stage(cin, cout, n, first=False):
        return [Residual(cin, cout, use_1x1conv=True, strides=2) if i == 0 and not first else Residual(cout, cout)
                for i in range(n)]

    class Net(nn.Module):  # d2l.resnet18(10, 3): 3x3 stem, no max-pool
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
            self.body = nn.Sequential(
                nn.Conv2d(3, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(),
                *stage(64, 64, 2, first=True), *stage(64, 128, 2), *stage(128, 256, 2), *stage(256, 512, 2),
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, NUM_CLASSES))

        def forward(self, x):
            return self.body((x - self.mean) / self.std)

    cl = torch.channels_last
    net = Net().to(memory_format=cl)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    # Same numbers as the TF side (NHWC there), laid out NCHW-logical / channels-last-physical here.
    x_train = torch.from_numpy(rng.uniform(0, 255, (args.train_batch, *SHAPE)).astype("float32")) \
        .permute(0, 3, 1, 2).contiguous(memory_format=cl)
    y_train = torch.from_numpy(rng.integers(0, NUM_CLASSES, args.train_batch).astype("int64"))
    x_infer = torch.from_numpy(rng.uniform(0, 255, (args.infer_batch, *SHAPE)).astype("float32")) \
        .permute(0, 3, 1, 2).contiguous(memory_format=cl)

    def train():
        start = time.perf_counter()
        net.train()
        opt.zero_grad(set_to_none=True)
        logits = net(x_train)
        loss = loss_fn(logits, y_train)
        loss.backward()
        opt.step()
        # the accuracy the Keras contenders also compute, and the loss read back like theirs
        float(loss.detach()), float((logits.detach().argmax(1) == y_train).float().mean())
        return time.perf_counter() - start

    def infer():
        start = time.perf_counter()
        net.eval()
        with torch.inference_mode():
            net(x_infer).numpy()
        return time.perf_counter() - start

    name = "torch channels-last"
    return {f"{name}|train": train, f"{name}|infer": infer}, {
        "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def worker_main(args) -> None:
    names = args.names.split(",")
    if args.worker == "torch":
        H.serve(lambda: torch_setup(args, names))
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        H.serve(lambda: tf_setup(args, names))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    info = H.machine()
    names = [n for n in CONTENDERS if not (args.quick and n in QUICK_SKIP)]
    if not H.torch_available():
        print("torch is not installed: skipping the PyTorch peer (pip install torch to include it)")
        names = [n for n in names if CONTENDERS[n][0] != "torch"]
    rounds = args.rounds or (1 if args.smoke else 3 if args.quick else 5)
    warmup = 1  # the first call traces/compiles; later calls are steady
    extra = [f"--train_batch={args.train_batch}", f"--infer_batch={args.infer_batch}"]
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(CONTENDERS[n][0], []).append(n)
    workers = {}
    try:
        for g, members in groups.items():
            H.log(f"starting worker {g}: {', '.join(members)}")
            workers[g] = H.Worker(__file__, g, GROUP_ENV[g], extra + [f"--names={','.join(members)}"])
            info[f"worker_{g}"] = workers[g].info
        tables = []
        results = {}
        for phase, batch, label in (("train", args.train_batch, "train step"),
                                    ("infer", args.infer_batch, "inference")):
            contenders = {n: workers[CONTENDERS[n][0]].timer(f"{n}|{phase}") for n in names}
            H.log(f"{label}: {len(names)} contenders, {warmup} warm-up + {rounds} rounds")
            cpu: dict[str, list[float]] = {}
            secs = H.interleave(contenders, rounds=rounds, warmup=warmup, log=H.log, cpu_out=cpu)
            table = H.Table(f"ResNet-18 (cifar) {label}, batch {batch}", "images/s", higher_better=True)
            cpu_table = H.Table(f"ResNet-18 (cifar) {label}, batch {batch}, per CPU-second of the process",
                                "images per CPU-s", higher_better=True)
            for n in names:
                table.add(n, H.throughput(secs[n], batch))
                cpu_table.add(n, H.throughput(cpu[n], batch))
            results[phase] = table.set_ratios(KCV)
            cpu_table.set_ratios(KCV)
            tables += [table, cpu_table]
    finally:
        for w in workers.values():
            w.close()
    verdicts = []
    if "torch channels-last" in results["train"]:
        verdicts.append(H.verdict("train: kcv / torch channels-last", results["train"]["torch channels-last"], 1.0, True))
    if "keras plain" in results["infer"]:
        verdicts.append(H.verdict("inference: kcv / keras plain (oneDNN on)", results["infer"]["keras plain"], 1.0, True))
    info["settings"] = {"train_batch": args.train_batch, "infer_batch": args.infer_batch, "rounds": rounds,
                        "warmup": warmup}
    H.finish(tables, info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
