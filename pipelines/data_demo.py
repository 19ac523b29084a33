"""kcv-data: check a data folder the way kcv-train's ExampleGen reads it, or write an embedded data set.

It lists each split's examples per class and decodes every image, so a broken folder is found
before a training run.

  kcv-data --source=kaggle_cifar10 --data_dir=DIR        # validate, decode every image, print counts
  kcv-data --source=class_folders --data_dir=DIR
  kcv-data --write_embedded=shapes_kaggle_cifar10 --output=DIR [--examples=1000]
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
flags.DEFINE_integer("seed", 0, "Seed for --write_embedded.")


def main(argv: list[str]) -> None:
    # flag mistakes first: kcv imports TensorFlow (seconds)
    if not FLAGS.write_embedded:
        if not FLAGS.source:
            fail(f"--source is required (or --write_embedded): {FLAGS['source'].help}")
        if FLAGS.data_dir and not FLAGS.download and not os.path.isdir(FLAGS.data_dir):
            fail(f"--data_dir={FLAGS.data_dir}: no such folder")
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


def run() -> None:
    run_app(main, __name__, prog="kcv-data")


if __name__ == "__main__":
    run()
