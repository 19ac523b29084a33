"""kcv-data: check a data folder the way kcv-train's ExampleGen reads it, or write an embedded data set.

It lists each split's examples per class and decodes every image, so a broken folder is found
before a training run.

  kcv-data --source=kaggle_cifar10 --data_dir=DIR        # validate, decode every image, print counts
  kcv-data --source=class_folders --data_dir=DIR
  kcv-data --write_embedded=shapes_kaggle_cifar10 --output=DIR [--examples=1000]
  kcv-data --source=kaggle_cifar10 --data_dir=DIR --make_tiny=book --output=OUT [--seed=0]

--make_tiny writes a new Kaggle-layout folder with a seeded sample of a Kaggle folder
(kaggle_cifar10 or kaggle_dog): `book` = the book's demo sizes, 1000 labelled training images
(spread evenly over the classes) and 5 test images; `zh` = the Chinese edition's train_tiny /
test_tiny sizes, 80 and 100. kcv-train --data_dir=OUT trains on it.
"""
from __future__ import annotations

import os
from collections import Counter

from absl import flags

from pipelines.cli import fail, run_app

FLAGS = flags.FLAGS
flags.DEFINE_string("source", None, "kaggle_cifar10, kaggle_dog, class_folders, images, points_csv, bananas, or tfds:<name>.")
flags.DEFINE_string("data_dir", None, "The folder to read.")
flags.DEFINE_bool("download", False, "Allow tensorflow-datasets to download.")
flags.DEFINE_bool("decode", True, "Decode every image (finds corrupt files).")
flags.DEFINE_string("write_embedded", None, "Write an embedded generated data set instead (name).")
flags.DEFINE_string("output", None, "Folder for --write_embedded.")
flags.DEFINE_integer("examples", 1000, "Examples for --write_embedded.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed for --write_embedded and --make_tiny.")
flags.DEFINE_enum("make_tiny", None, ["book", "zh"], "Write a tiny Kaggle-layout copy of --data_dir into --output: "
                  "book = 1000 labelled training + 5 test images (the book's demo), zh = 80 + 100 (the Chinese "
                  "edition's train_tiny / test_tiny).")
TINY_SOURCES = ("kaggle_cifar10", "kaggle_dog")


def main(argv: list[str]) -> None:
    # flag mistakes first: kcv imports TensorFlow (seconds)
    if not FLAGS.write_embedded:
        if not FLAGS.source:
            fail(f"--source is required (or --write_embedded): {FLAGS['source'].help}")
        if FLAGS.data_dir and not FLAGS.download and not os.path.isdir(FLAGS.data_dir):
            fail(f"--data_dir={FLAGS.data_dir}: no such folder")
    if FLAGS.make_tiny:
        if FLAGS.write_embedded:
            fail("--make_tiny and --write_embedded are two different jobs: give one")
        if FLAGS.source not in TINY_SOURCES:
            fail(f"--make_tiny copies a Kaggle folder: --source must be {' or '.join(TINY_SOURCES)}, "
                 f"got {FLAGS.source}")
        if not FLAGS.data_dir:
            fail("--data_dir is required with --make_tiny: the Kaggle folder to sample")
        if not FLAGS.output:
            fail("--output is required with --make_tiny: the new folder to write")
        if os.path.exists(FLAGS.output) and (not os.path.isdir(FLAGS.output) or os.listdir(FLAGS.output)):
            fail(f"--output {FLAGS.output} exists and is not an empty folder")
    from kcv.data import synthetic
    from kcv.data.errors import DataError

    if FLAGS.write_embedded:
        if FLAGS.write_embedded not in synthetic.GENERATORS:
            fail(f"--write_embedded: unknown {FLAGS.write_embedded!r}; "
                 f"use one of {', '.join(synthetic.list_generators())}")
        if not FLAGS.output:
            fail("--output is required with --write_embedded: the folder to write the data set into")
        if os.path.exists(FLAGS.output):
            if not os.path.isdir(FLAGS.output):
                fail(f"--output {FLAGS.output} is a file, not a folder")
            if os.listdir(FLAGS.output):
                fail(f"--output {FLAGS.output} is not empty")
            os.rmdir(FLAGS.output)  # write() fills only a folder that is not there yet
        synthetic.write(FLAGS.write_embedded, FLAGS.output, FLAGS.examples, FLAGS.seed)
        print(f"wrote {FLAGS.write_embedded} ({FLAGS.examples} examples) to {FLAGS.output}")
        return
    from kcv.data.sources import open_source

    if FLAGS.make_tiny:
        return make_tiny(DataError)
    try:
        source = open_source(FLAGS.source, data_dir=FLAGS.data_dir, download=FLAGS.download)
        if FLAGS.decode:
            source.validate(read_images=True)
    except DataError as err:
        fail(str(err))
    for split in source.native_splits:
        records = source.records(split)
        labelled = Counter(r.label for r in records if r.label is not None)
        print(f"{split}: {len(records)} examples" + (f", {len(labelled)} classes" if labelled else ", unlabelled"))
        for label, count in sorted(labelled.items()):
            print(f"  {label:20} {count}")
    print("ok" + (": every image decoded" if FLAGS.decode else ""))


def make_tiny(DataError) -> None:
    from kcv.data.sources import open_source
    from kcv.data.sources.kaggle import TINY_SIZES, write_tiny

    n_train, n_test = TINY_SIZES[FLAGS.make_tiny]
    try:
        source = open_source(FLAGS.source, data_dir=FLAGS.data_dir)
        counts = write_tiny(source, FLAGS.output, n_train, n_test, FLAGS.seed)
    except DataError as err:
        fail(str(err))
    shares = sorted(set(counts["per_class"].values()))
    spread = f"{shares[0]}" if len(shares) == 1 else f"{shares[0]}-{shares[-1]}"
    print(f"wrote {FLAGS.output}: {counts['train']} labelled training images ({counts['classes']} classes, "
          f"{spread} each), {counts['test']} test images"
          + (f", {counts['sample_submission']}" if counts["sample_submission"] else "")
          + f" (--make_tiny={FLAGS.make_tiny}, --seed={FLAGS.seed}, from {FLAGS.data_dir})")


def run() -> None:
    run_app(main, __name__, prog="kcv-data")


if __name__ == "__main__":
    run()
