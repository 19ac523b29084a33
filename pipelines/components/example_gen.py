"""ExampleGen: any data source -> sharded TFRecords of the one Example schema, split train/eval.

Writes <root>/ExampleGen/examples/<run_id>/{Split-train,Split-eval}/*.tfrecord.gz, counts.json and
labels.txt. Every image is decoded once before anything is written: bad data fails here, up front,
with one message, never halfway through an epoch.
"""
from __future__ import annotations

import io
import json
import os
from collections import Counter

from absl import logging
from PIL import Image

from kcv.data import bananas, dogs, shapes, sprites, toy_gaussian
from kcv.data.errors import DataError, offenders
from kcv.data.images import decode_rgb, encode_png
from kcv.data.schema import make_example
from kcv.data.sources import Source, open_source
from kcv.data.points import PointsCsvSource, write_points_csv
from kcv.data.split import split_per_class, split_random
from kcv.data.tfrecords import write_shards
from pipelines import artifacts

# Embedded generators: name -> function(folder, n, seed) writing the real source's layout.
EMBEDDED = {
    "shapes_kaggle_cifar10": lambda root, n, seed: shapes.write_kaggle_cifar10(root, n_train=n, n_test=20, seed=seed),
    "shapes_grey_folders": lambda root, n, seed: shapes.write_class_folders(root, n=n, seed=seed, size=28, grey=True),
    "toy_gaussian_points": lambda root, n, seed: write_points_csv(root, toy_gaussian.make_data(n, seed=seed)),
    "sprites": lambda root, n, seed: sprites.write_sprites(root, count=n, seed=seed),
    "bananas": lambda root, n, seed: bananas.write_bananas(root, num_train=n, num_val=max(20, n // 10), seed=seed),
    "dogs_kaggle": lambda root, n, seed: dogs.write_kaggle_dog(root, n_train=n, n_test=20, num_breeds=5, seed=seed),
}


def embedded_data(cfg) -> str:
    """Generate (once per name/size/seed) the embedded default data under the pipeline root."""
    if cfg.embedded not in EMBEDDED:
        raise artifacts.PipelineError(f"experiment {cfg.experiment} has no embedded data generator {cfg.embedded!r}")
    folder = os.path.join(cfg.pipeline_root, "embedded_data", f"{cfg.embedded}-n{cfg.embedded_examples}-s{cfg.seed}")
    if not os.path.isdir(folder):
        tmp = folder + ".tmp"
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        EMBEDDED[cfg.embedded](tmp, cfg.embedded_examples, cfg.seed)
        os.replace(tmp, folder)
    return folder


def open_configured_source(cfg) -> Source:
    if cfg.data_dir:
        return open_source(cfg.source, data_dir=cfg.data_dir, download=cfg.download)
    return open_source(cfg.embedded_source, data_dir=embedded_data(cfg))


def _encoded(source: Source, record) -> bytes:
    """The bytes to store: the file itself when it is 8-bit RGB PNG/JPEG, else a PNG of the RGB image."""
    if record.path is None:
        raise AssertionError("file-less records go through iter_examples")
    with open(record.path, "rb") as f:
        data = f.read()
    image = decode_rgb(data, name=os.path.basename(record.path))  # full decode: validation
    with Image.open(io.BytesIO(data)) as img:
        if img.mode == "RGB" and img.format in ("PNG", "JPEG"):
            return data
    return encode_png(image)


def _load_split(source: Source, split: str, vocab: dict[str, int]):
    """[(id, encoded bytes, label index, label text, features)], decoding every image; DataError lists bad ones."""
    rows, bad = [], []
    records = source.records(split)
    if isinstance(source, PointsCsvSource):  # vector data: no image
        return [(r.id, b"", -1, "", p) for r, p in zip(records, source.points)]
    boxes = source.objects(split) if hasattr(source, "objects") else [None] * len(records)
    if records and records[0].path is None:  # tfds: images come decoded
        for example_id, image, label in source.iter_examples(split):
            rows.append((example_id, encode_png(image), vocab.get(label, -1), label or "", None))
        return rows
    total = len(records)
    for n, (record, objects) in enumerate(zip(records, boxes), start=1):
        try:
            rows.append((record.id, _encoded(source, record), vocab.get(record.label, -1), record.label or "", objects))
        except (ValueError, OSError) as err:
            bad.append(str(err))
        if n % 10000 == 0:
            logging.info("ExampleGen: read %d/%d images", n, total)
    if bad:
        raise offenders("images are unreadable (fix or remove them and their label rows)", bad)
    return rows


def _example(example_id, data, label, text, extra):
    """extra: a feature vector (points), (boxes, classes) (detection) or None."""
    if isinstance(extra, tuple):
        return make_example(example_id, data, label, text, boxes=extra[0].tolist(), box_labels=extra[1].tolist())
    return make_example(example_id, data, label, text, features=extra)


def run(cfg, run_id: str) -> str:
    source = open_configured_source(cfg)
    vocab_list = source.labels() if cfg.labelled else []
    if cfg.task == "classification" and len(vocab_list) < 2:
        raise DataError(f"need at least 2 classes, found {len(vocab_list)}")
    vocab = {name: i for i, name in enumerate(vocab_list)}
    train_rows = _load_split(source, "train", vocab)
    if getattr(source, "eval_split", None):  # bananas: the book's own validation split
        eval_rows = _load_split(source, source.eval_split, vocab)
    elif "test" in source.native_splits and source.records("test") and source.records("test")[0].label is not None:
        eval_rows = _load_split(source, "test", vocab)  # tfds: the book validates on the test split
    elif not cfg.labelled:
        train_idx, eval_idx = split_random(len(train_rows), cfg.valid_ratio, cfg.seed)
        train_rows, eval_rows = [train_rows[i] for i in train_idx], [train_rows[i] for i in eval_idx]
    else:
        train_idx, eval_idx = split_per_class([r[0] for r in train_rows], [r[3] for r in train_rows],
                                              cfg.valid_ratio, seed=cfg.seed)
        train_rows, eval_rows = [train_rows[i] for i in train_idx], [train_rows[i] for i in eval_idx]
    with artifacts.Publish(cfg.pipeline_root, artifacts.EXAMPLES, run_id) as out:
        counts = {}
        for split, rows in (("train", train_rows), ("eval", eval_rows)):
            examples = (_example(*row) for row in rows)
            shards = min(cfg.num_shards, max(1, len(rows)))
            counts[split] = write_shards(examples, os.path.join(out, f"Split-{split}"), shards)
            if cfg.labelled:
                counts[f"{split}_per_class"] = dict(sorted(Counter(r[3] for r in rows).items()))
        counts["source"] = cfg.source if cfg.data_dir else f"embedded:{cfg.embedded}"
        objects = [len(r[4][1]) for r in train_rows + eval_rows if isinstance(r[4], tuple)]
        if objects:
            counts["max_objects"] = max(objects)
        with open(os.path.join(out, "counts.json"), "w") as f:
            json.dump(counts, f, indent=2)
        with open(os.path.join(out, "labels.txt"), "w") as f:
            f.write("".join(name + "\n" for name in vocab_list))
    logging.info("ExampleGen: %d train / %d eval examples, %d classes", counts["train"], counts["eval"], len(vocab_list))
    return os.path.join(artifacts.artifact_dir(cfg.pipeline_root, artifacts.EXAMPLES), run_id)
