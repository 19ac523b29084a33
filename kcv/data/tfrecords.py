"""Sharded, GZIP-compressed TFRecord files of the Example schema."""
from __future__ import annotations

import glob
import os
from typing import Iterable

import tensorflow as tf

SUFFIX = ".tfrecord.gz"


def shard_paths(out_dir: str, num_shards: int, prefix: str = "data") -> list[str]:
    return [os.path.join(out_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}{SUFFIX}") for i in range(num_shards)]


def write_shards(examples: Iterable[tf.train.Example], out_dir: str, num_shards: int = 1,
                 prefix: str = "data") -> int:
    """Write examples round-robin into `num_shards` files under out_dir; returns the count."""
    os.makedirs(out_dir, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    writers = [tf.io.TFRecordWriter(p, options) for p in shard_paths(out_dir, num_shards, prefix)]
    count = 0
    try:
        for example in examples:
            writers[count % num_shards].write(example.SerializeToString(deterministic=True))  # byte-identical reruns
            count += 1
    finally:
        for w in writers:
            w.close()
    return count


def list_shards(folder: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(folder, f"*{SUFFIX}")))
    if not files:
        raise FileNotFoundError(f"no {SUFFIX} files in {folder}")
    return files


def read_records(folder_or_files: str | list[str]) -> tf.data.Dataset:
    """A dataset of serialized Examples from a folder of shards (in file order, deterministic)."""
    files = list_shards(folder_or_files) if isinstance(folder_or_files, str) else list(folder_or_files)
    return tf.data.TFRecordDataset(files, compression_type="GZIP")
