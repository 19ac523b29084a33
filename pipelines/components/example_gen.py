"""ExampleGen: any data source -> sharded TFRecords of the one Example schema, split train/eval.

Writes ExampleGen/examples/<run_id>/{Split-train,Split-eval}/*.tfrecord.gz, counts.json and
labels.txt (the one class vocabulary). It works only through the Source interface
(kcv.data.sources): the source lists, validates and decodes every example once before anything
is written, so bad data fails here, up front, with one message, never halfway through an epoch.
The eval split is the source's own (`Source.eval_split`) or held out: per class when the data is
labelled, at random when it is not.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter

from absl import logging

from kcv.data import synthetic
from kcv.data.schema import make_example
from kcv.data.sources import Source, SourceExample, open_source
from kcv.data.split import split_per_class, split_random
from kcv.data.tfrecords import write_shards
from pipelines import artifacts
from pipelines.components import Result

INPUTS: tuple[str, ...] = ()
OUTPUTS = ("examples",)


def open_configured_source(cfg) -> tuple[Source, str]:
    """(the source, how the record names it): the source (preset or --source) on --data_dir, else
    the embedded generator's data, generated once per name/size/seed under the pipeline root."""
    data = cfg.data
    if data.data_dir or not data.embedded:
        return open_source(data.source, data_dir=data.data_dir, download=data.download), data.source
    generator = synthetic.get_generator(data.embedded)
    folder = os.path.join(cfg.paths.pipeline_root, "embedded_data",
                          f"{data.embedded}-n{data.embedded_examples}-s{cfg.runtime.seed}")
    synthetic.write(data.embedded, folder, data.embedded_examples, cfg.runtime.seed)
    return open_source(generator.source, data_dir=folder), f"embedded:{data.embedded}"


def split(cfg, source: Source, vocabulary: list[str]) -> tuple[list[SourceExample], list[SourceExample]]:
    """(train, eval) examples: the source's eval split, else a seeded hold-out."""
    train = source.load("train", max_image_pixels=cfg.data.max_image_pixels)
    if source.eval_split:
        return train, source.load(source.eval_split, max_image_pixels=cfg.data.max_image_pixels)
    if vocabulary:
        train_idx, eval_idx = split_per_class([e.id for e in train], [e.label for e in train],
                                              cfg.data.valid_ratio, seed=cfg.runtime.seed)
    else:
        train_idx, eval_idx = split_random(len(train), cfg.data.valid_ratio, cfg.runtime.seed)
    return [train[i] for i in train_idx], [train[i] for i in eval_idx]


def to_example(example: SourceExample, index: dict[str, int]):
    boxes = None if example.boxes is None else example.boxes.tolist()
    classes = None if example.box_classes is None else example.box_classes.tolist()
    features = None if example.features is None else example.features.tolist()
    return make_example(example.id, example.encoded, index.get(example.label, -1), example.label or "",
                        boxes=boxes, box_labels=classes, features=features)


def run(cfg, task, inputs: dict[str, str], run_id: str) -> Result:
    source, source_name = open_configured_source(cfg)
    vocabulary = source.labels()
    task.check_vocabulary(vocabulary)
    index = {name: i for i, name in enumerate(vocabulary)}
    splits = dict(zip(("train", "eval"), split(cfg, source, vocabulary)))
    # The fingerprint of what the source gave: the serialized Examples, canonical field order.
    fingerprint = hashlib.sha256()
    with artifacts.Publish(cfg.paths.pipeline_root, artifacts.EXAMPLES, run_id) as out:
        counts: dict = {"source": source_name}
        for name, rows in splits.items():
            serialized = [to_example(e, index) for e in rows]
            for ex in serialized:
                fingerprint.update(ex.SerializeToString(deterministic=True))
            counts[name] = write_shards(iter(serialized), os.path.join(out, f"Split-{name}"),
                                        min(cfg.data.num_shards, max(1, len(rows))))
            per_class = Counter(e.label for e in rows if e.label is not None)
            if per_class:
                counts[f"{name}_per_class"] = dict(sorted(per_class.items()))
        objects = [len(e.box_classes) for rows in splits.values() for e in rows if e.box_classes is not None]
        if objects:
            counts["max_objects"] = max(objects)
        counts["fingerprint"] = fingerprint.hexdigest()
        with open(os.path.join(out, "counts.json"), "w") as f:
            json.dump(counts, f, indent=2)
        with open(os.path.join(out, artifacts.VOCABULARY), "w") as f:
            f.write("".join(name + "\n" for name in vocabulary))
    logging.info("ExampleGen: %d train / %d eval examples, %d classes", counts["train"], counts["eval"],
                 len(vocabulary))
    examples = os.path.join(artifacts.artifact_dir(cfg.paths.pipeline_root, artifacts.EXAMPLES), run_id)
    return Result({"examples": examples}, f"{counts['train']} train / {counts['eval']} eval examples from "
                  f"{source_name}", info={"source_fingerprint": counts["fingerprint"]})
