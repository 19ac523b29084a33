"""DCGAN train step (one D update + one G update) at batch 64, 64x64x3: kcv vs PyTorch.

    python benchmarks/dcgan_step.py [--quick] [--json=PATH]

Contenders (real images: one fixed random batch in [-1, 1]; fresh N(0, 1) noise every step):
  kcv                     kcv.models.build_dcgan(seed=0) compiled with dcgan_optimizers(); one
                          `train_on_batch` = GAN.train_step (D then G); oneDNN on (the binaries' default)
  kcv oneDNN off          the same with TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's default on this CPU)
  kcv XLA                 compile(jit_compile=True), oneDNN on                       (full run only)
  kcv mixed_bfloat16      global policy mixed_bfloat16 when building, oneDNN on      (full run only)
  torch channels-last     the book's DCGAN net_G/net_D in PyTorch (ConvTranspose/Conv k4, BN,
                          ReLU/LeakyReLU 0.2, N(0, 0.02) init), Adam(betas 0.5, 0.999), BCE with
                          logits, the book's update_D then update_G, nets and batch channels-last
  torch tuned             the same nets, but G runs once (its output detached for the D step,
                          differentiated in the G step) and D's weights are frozen during the G
                          step: the work kcv's train_step does (kcv also repeats G's BatchNorm
                          running update, as the book's second forward would; torch tuned does not)
torch threads = os.cpu_count(). Each environment is a worker subprocess; contenders are called
one at a time, the order rotated each round, after warm-up. Target (issue #19): kcv >= 1.3x torch channels-last.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

LATENT, LR = 100, 0.0005
KCV = "kcv"
CONTENDERS = {
    KCV: ("onednn", {}),
    "kcv oneDNN off": ("nodnn", {}),
    "kcv XLA": ("onednn", {"xla": True}),
    "kcv mixed_bfloat16": ("onednn", {"bf16": True}),
    "torch channels-last": ("torch", {}),
    "torch tuned": ("torch", {"tuned": True}),
}
QUICK_SKIP = ("kcv XLA", "kcv mixed_bfloat16", "torch tuned")
GROUP_ENV = {"onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"}, "nodnn": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "torch": {}}


def parse_args(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--worker", help=H.argparse.SUPPRESS)
    p.add_argument("--names", help=H.argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.batch, args.image_size = 4, 16
    return args


def tf_setup(args, names):
    import time

    import keras
    import numpy as np
    import tensorflow as tf
    from kcv.models.dcgan import build_dcgan, dcgan_optimizers

    real = np.random.default_rng(0).uniform(-1, 1, (args.batch, args.image_size, args.image_size, 3)).astype("float32")
    real = tf.constant(real)
    contenders = {}
    for name in names:
        opts = CONTENDERS[name][1]
        if opts.get("bf16"):
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            gan = build_dcgan(image_size=args.image_size, seed=0)
            gan.compile(**dcgan_optimizers(LR), jit_compile=bool(opts.get("xla", False)))
        finally:
            keras.mixed_precision.set_global_policy("float32")

        def step(gan=gan):
            start = time.perf_counter()
            gan.train_on_batch(real)  # metrics come back as floats: the step has finished
            return time.perf_counter() - start

        contenders[name] = step
    return contenders, {"tensorflow": tf.__version__, "keras": keras.__version__,
                        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def torch_setup(args, names):
    import time

    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    n_blocks = {64: 4, 32: 3, 16: 2, 8: 1}[args.image_size]

    def g_block(cin, cout, stride=2, padding=1):
        return [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    def d_block(cin, cout):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]

    def build():
        f = 64 * 2 ** (n_blocks - 1)  # 512 for 64x64
        g = g_block(LATENT, f, 1, 0)
        for _ in range(n_blocks - 1):
            g += g_block(f, f // 2)
            f //= 2
        net_g = nn.Sequential(*g, nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh())
        d, cin = [], 3
        for i in range(n_blocks):
            d += d_block(cin, 64 * 2**i)
            cin = 64 * 2**i
        net_d = nn.Sequential(*d, nn.Conv2d(cin, 1, 4, bias=False))
        for w in list(net_g.parameters()) + list(net_d.parameters()):
            nn.init.normal_(w, 0, 0.02)  # the book initialises every weight, BN included, N(0, 0.02)
        cl = torch.channels_last
        return net_g.to(memory_format=cl), net_d.to(memory_format=cl)

    cl = torch.channels_last
    real = torch.from_numpy(np.random.default_rng(0).uniform(
        -1, 1, (args.batch, args.image_size, args.image_size, 3)).astype("float32")).permute(0, 3, 1, 2) \
        .contiguous(memory_format=cl)
    loss = nn.BCEWithLogitsLoss()
    contenders = {}
    for name in names:
        tuned = CONTENDERS[name][1].get("tuned", False)
        net_g, net_d = build()
        opt_d = torch.optim.Adam(net_d.parameters(), lr=LR, betas=(0.5, 0.999))
        opt_g = torch.optim.Adam(net_g.parameters(), lr=LR, betas=(0.5, 0.999))

        def step(net_g=net_g, net_d=net_d, opt_d=opt_d, opt_g=opt_g, tuned=tuned):
            start = time.perf_counter()
            b = real.shape[0]
            z = torch.normal(0, 1, size=(b, LATENT, 1, 1)).contiguous(memory_format=cl)
            ones, zeros = torch.ones(b), torch.zeros(b)
            # update_D
            opt_d.zero_grad(set_to_none=True)
            real_y = net_d(real)
            fake_x = net_g(z)  # the book builds G's graph here and detaches below
            fake_y = net_d(fake_x.detach())
            loss_d = (loss(real_y.reshape(b), ones) + loss(fake_y.reshape(b), zeros)) / 2
            loss_d.backward()
            opt_d.step()
            # update_G
            opt_g.zero_grad(set_to_none=True)
            if tuned:
                net_d.requires_grad_(False)
            fake_y = net_d(fake_x if tuned else net_g(z))  # the book runs G again on the same z
            loss_g = loss(fake_y.reshape(b), ones)
            loss_g.backward()
            opt_g.step()
            if tuned:
                net_d.requires_grad_(True)
            float(loss_d.detach()), float(loss_g.detach())
            return time.perf_counter() - start

        contenders[name] = step
    return contenders, {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        names = args.names.split(",")
        if args.worker == "torch":
            H.serve(lambda: torch_setup(args, names))
        else:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            H.serve(lambda: tf_setup(args, names))
        return 0
    info = H.machine()
    names = [n for n in CONTENDERS if not (args.quick and n in QUICK_SKIP)]
    if not H.torch_available():
        print("torch is not installed: skipping the PyTorch peers (pip install torch to include them)")
        names = [n for n in names if CONTENDERS[n][0] != "torch"]
    rounds = args.rounds or (1 if args.smoke else 4 if args.quick else 8)
    warmup = 1 if args.smoke else 2  # torch's first steps are slow too
    extra = [f"--batch={args.batch}", f"--image_size={args.image_size}"]
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(CONTENDERS[n][0], []).append(n)
    workers = {}
    try:
        for g, members in groups.items():
            H.log(f"starting worker {g}: {', '.join(members)}")
            workers[g] = H.Worker(__file__, g, GROUP_ENV[g], extra + [f"--names={','.join(members)}"])
            info[f"worker_{g}"] = workers[g].info
        contenders = {n: workers[CONTENDERS[n][0]].timer(n) for n in names}
        cpu: dict[str, list[float]] = {}
        secs = H.interleave(contenders, rounds=rounds, warmup=warmup, log=H.log, cpu_out=cpu)
    finally:
        for w in workers.values():
            w.close()
    table = H.Table(f"DCGAN train step (D + G), batch {args.batch}, {args.image_size}x{args.image_size}x3",
                    "images/s", higher_better=True)
    cpu_table = H.Table(f"DCGAN train step, per CPU-second of the process", "images per CPU-s", higher_better=True)
    for n in names:
        table.add(n, H.throughput(secs[n], args.batch))
        cpu_table.add(n, H.throughput(cpu[n], args.batch))
    ratios = table.set_ratios(KCV)
    cpu_table.set_ratios(KCV)
    verdicts = [H.verdict("kcv / torch channels-last", ratios["torch channels-last"], 1.3, True)] \
        if "torch channels-last" in ratios else []
    if "torch tuned" in ratios:  # the same work as kcv's step: what is left is kernel speed
        verdicts.append(f"[info] kcv / torch tuned (the same work): {ratios['torch tuned']:.2f}x")
    if "kcv oneDNN off" in ratios:
        verdicts.append(f"[info] oneDNN on / off: {ratios['kcv oneDNN off']:.2f}x")
    info["settings"] = {"batch": args.batch, "image_size": args.image_size, "rounds": rounds, "warmup": warmup}
    H.finish([table, cpu_table], info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
