"""SavedModel serving latency: the bytes and tensor signatures vs calling the Keras model.

    python benchmarks/serving_latency.py [--quick] [--json=PATH]

The kcv ResNet-18 cifar classifier (the trainer's model: Normalization -> backbone -> logits,
random weights) exported with `kcv.serving.classifier.export_classifier`, loaded back with plain
`tf.saved_model.load`, and timed at batch 1 and batch 64 (one process, oneDNN on as the binaries
set it, contenders interleaved after warm-up):
  SavedModel serving_images   uint8 (B, 32, 32, 3) tensors in -> probabilities, classes, names
  SavedModel serving_default  B PNG strings in (decode + resize + the same graph)
  keras model(x) eager        the in-memory Keras model called directly (training=False)
  keras predict_on_batch      the Keras model's compiled predict function
Latency is milliseconds per call (outputs read back). "vs tensor sig" is this contender's
median latency / serving_images' median: the bytes-signature overhead at batch 64 has a target
of at most 1.20x.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

TENSOR_SIG, BYTES_SIG = "SavedModel serving_images", "SavedModel serving_default"


def parse_args(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tempfile

    import numpy as np
    import tensorflow as tf

    from kcv.data.images import encode_png
    from kcv.data.synthetic.shapes import SHAPE_CLASSES, make_images
    from kcv.serving.classifier import export_classifier
    from resnet18_train import kcv_model

    info = H.machine()
    info.update(H.versions("tensorflow", "keras"), onednn=os.environ["TF_ENABLE_ONEDNN_OPTS"], onednn_enabled=H.onednn_enabled())
    batches = [int(b) for b in args.batches.split(",")]
    if args.smoke:
        batches = [1, 4]
    tmp = tempfile.TemporaryDirectory(prefix="kcv_bench_serving_")
    model = kcv_model()
    path = export_classifier(model, os.path.join(tmp.name, "1"), list(SHAPE_CLASSES), (32, 32))
    loaded = tf.saved_model.load(path)
    sig_images = loaded.signatures["serving_images"]
    sig_bytes = loaded.signatures["serving_default"]
    images, _ = make_images(max(batches), seed=0)

    tables, verdicts = [], []
    for b in batches:
        x_u8 = tf.constant(images[:b])
        x_f32 = tf.constant(images[:b].astype("float32"))
        pngs = tf.constant([encode_png(im) for im in images[:b]])
        # the two signatures give the same classes (PNG is lossless, 32x32 needs no resize)
        same = np.array_equal(sig_images(images=x_u8)["classes"].numpy(), sig_bytes(image_bytes=pngs)["classes"].numpy())
        contenders = {
            TENSOR_SIG: H.timed(lambda: sig_images(images=x_u8), lambda o: o["probabilities"].numpy()),
            BYTES_SIG: H.timed(lambda: sig_bytes(image_bytes=pngs), lambda o: o["probabilities"].numpy()),
            "keras model(x) eager": H.timed(lambda: model(x_f32, training=False), lambda o: o.numpy()),
            "keras predict_on_batch": H.timed(lambda: model.predict_on_batch(x_f32)),
        }
        rounds = args.rounds or (2 if args.smoke else (20 if args.quick else 40) if b == 1 else (5 if args.quick else 12))
        H.log(f"batch {b}: {rounds} rounds")
        cpu: dict[str, list[float]] = {}
        secs = H.interleave(contenders, rounds=rounds, warmup=3, log=None, cpu_out=cpu)
        table = H.Table(f"Serving latency, batch {b}", "ms per call", higher_better=False,
                        ratio_label="vs tensor sig")
        cpu_table = H.Table(f"Serving CPU time, batch {b} (steadier than wall time on a loaded machine)",
                            "CPU ms per call", higher_better=False, ratio_label="vs tensor sig")
        for name in secs:
            table.add(name, [1e3 * t for t in secs[name]])
            cpu_table.add(name, [1e3 * t for t in cpu[name]])
        for t in (table, cpu_table):
            base = t.get(TENSOR_SIG).median
            for row in t.rows:
                if row.name != TENSOR_SIG:
                    row.ratio = f"{row.stats.median / base:.2f}x"
        overhead = table.get(BYTES_SIG).median / table.get(TENSOR_SIG).median
        cpu_overhead = cpu_table.get(BYTES_SIG).median / cpu_table.get(TENSOR_SIG).median
        decode_ms = (cpu_table.get(BYTES_SIG).median - cpu_table.get(TENSOR_SIG).median) / b
        tables += [table, cpu_table]
        if not same:
            verdicts.append(f"[FAIL] batch {b}: bytes and tensor signatures disagree on classes")
        if b == 64:
            verdicts.append(H.verdict("bytes-signature latency / tensor signature at batch 64", overhead, 1.20,
                                      at_least=False))
            verdicts.append(H.verdict("bytes-signature CPU time / tensor signature at batch 64", cpu_overhead,
                                      1.20, at_least=False))
        else:
            verdicts.append(f"[info] batch {b}: bytes / tensor signature {overhead:.2f}x wall, "
                            f"{cpu_overhead:.2f}x CPU")
        verdicts.append(f"[info] batch {b}: decode + resize in the bytes signature ~{decode_ms:.2f} CPU ms per image")
    tmp.cleanup()
    H.finish(tables, info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
