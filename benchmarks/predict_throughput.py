"""kcv-predict throughput: images/s over a folder of PNG files, tf.data reading vs a plain loop.

    python benchmarks/predict_throughput.py [--quick] [--files=10000] [--json=PATH]

10,000 random 32x32 PNG files are written to a temporary folder, and the kcv ResNet-18 cifar
classifier (the trainer's model, random weights) is exported with
`kcv.serving.classifier.export_classifier` and loaded back with `tf.saved_model.load`. Contenders
(one process, batch 64 as kcv-predict's default, interleaved after a short warm-up):
  kcv-predict (tf.data)   pipelines.predict.predict_batches: files read in parallel by tf.data,
                          a few batches ahead, bytes batches sent to serving_default
  plain loop              each batch's files read one by one with open(), then serving_default
                          (what kcv-predict did before)
  tf.data reading only    pipelines.predict.read_batches alone, no model: the reading's ceiling
Both model contenders read the probabilities back. "kcv / peer" is images/s over the peer's.
A pass over all the files is one timed call. The first pass over the files (before the model
loads) is timed apart: kcv-predict's header check vs decoding every file with PIL (what it did before).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

KCV, PLAIN, READ_ONLY = "kcv-predict (tf.data)", "plain loop", "tf.data reading only"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def parse_args(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--files", type=int, default=10_000, help="PNG files to generate and predict")
    p.add_argument("--batch_size", type=int, default=64, help="images per serving_default call")
    return p.parse_args(argv)


def write_pngs(folder: str, count: int, seed: int = 0) -> list[str]:
    """`count` random 32x32 RGB PNGs named 0.png, 1.png, ... (kcv-predict's numeric id order)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        paths.append(os.path.join(folder, f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def plain_loop(fn, paths: list[str], batch_size: int):
    """The obvious peer: read each batch's files one by one, then one signature call."""
    import tensorflow as tf

    for start in range(0, len(paths), batch_size):
        data = []
        for path in paths[start:start + batch_size]:
            with open(path, "rb") as f:
                data.append(f.read())
        yield fn(image_bytes=tf.constant(data))


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tempfile

    import numpy as np
    import tensorflow as tf

    from kcv.serving.classifier import export_classifier
    from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS, load_rgb
    from pipelines.predict import check_headers, predict_batches, read_batches
    from resnet18_train import kcv_model

    files, batch = (64, 16) if args.smoke else (args.files, args.batch_size)
    rounds = args.rounds or (1 if args.smoke or args.quick else 3)
    info = H.machine()
    info.update(H.versions("tensorflow", "keras"), onednn_enabled=H.onednn_enabled(),
                settings={"files": files, "batch_size": batch, "rounds": rounds})
    tmp = tempfile.TemporaryDirectory(prefix="kcv_bench_predict_")
    H.log(f"writing {files} PNGs, exporting ResNet-18 cifar")
    os.makedirs(os.path.join(tmp.name, "test"))
    paths = write_pngs(os.path.join(tmp.name, "test"), files)
    fn = tf.saved_model.load(export_classifier(kcv_model(), os.path.join(tmp.name, "model", "1"), CLASSES,
                                               (32, 32))).signatures["serving_default"]

    def probabilities(outputs) -> np.ndarray:
        return np.concatenate([out["probabilities"].numpy() for out in outputs])

    # Warm-up on two batches (traces the signature and the dataset), not a whole pass: a pass
    # is minutes of ResNet-18 on a shared CPU. The two paths must agree exactly.
    few = paths[:2 * batch]
    same = np.array_equal(probabilities(predict_batches(fn, few, batch)), probabilities(plain_loop(fn, few, batch)))
    contenders = {
        KCV: H.timed(lambda: probabilities(predict_batches(fn, paths, batch))),
        PLAIN: H.timed(lambda: probabilities(plain_loop(fn, paths, batch))),
        READ_ONLY: H.timed(lambda: sum(int(b.shape[0]) for b in read_batches(paths, batch))),
    }
    H.log(f"{len(contenders)} contenders x {rounds} rounds over {files} files")
    cpu: dict[str, list[float]] = {}
    secs = H.interleave(contenders, rounds=rounds, warmup=0, log=None, cpu_out=cpu)
    checks = {"header check (kcv-predict)": H.timed(lambda: check_headers(paths, DEFAULT_MAX_IMAGE_PIXELS)),
              "full decode (before)": H.timed(lambda: [load_rgb(p) for p in paths])}
    check_cpu: dict[str, list[float]] = {}
    check_secs = H.interleave(checks, rounds=rounds, warmup=0, log=None, cpu_out=check_cpu)
    tmp.cleanup()

    table = H.Table(f"kcv-predict over {files} 32x32 PNG files, ResNet-18 cifar, batch {batch}", "images/s",
                    higher_better=True)
    cpu_table = H.Table("The same, per CPU-second of the process", "images per CPU-s", higher_better=True)
    for name in contenders:
        table.add(name, H.throughput(secs[name], files), note="no model" if name == READ_ONLY else "")
        cpu_table.add(name, H.throughput(cpu[name], files), note="no model" if name == READ_ONLY else "")
    check_table = H.Table(f"First pass over the {files} files, before the model loads", "images/s",
                          higher_better=True)
    for name in checks:
        check_table.add(name, H.throughput(check_secs[name], files))
    check_ratio = check_table.set_ratios("header check (kcv-predict)")["full decode (before)"]
    wall = table.set_ratios(KCV, [PLAIN])[PLAIN]
    cpu_ratio = cpu_table.set_ratios(KCV, [PLAIN])[PLAIN]
    verdicts = [f"[info] tf.data / plain loop: {wall:.2f}x wall, {cpu_ratio:.2f}x CPU",
                f"[info] reading headroom: tf.data reads {table.get(READ_ONLY).median / table.get(KCV).median:.0f}x "
                "faster than the model consumes",
                f"[info] header check / full decode: {check_ratio:.2f}x"]
    if not same:
        verdicts.append("[FAIL] the tf.data and plain-loop paths disagree on probabilities")
    H.finish([table, cpu_table, check_table], info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
