"""Transform: per-channel statistics of the train split, checked by hand."""
import json
import os

import numpy as np
import pytest

from kcv.data.images import encode_png
from kcv.data.schema import make_example
from kcv.data.tfrecords import write_shards
from pipelines.components import transform
from pipelines.tasks import get_task
from tests.pipelines.conftest import small_config


def test_statistics_of_known_images(tmp_path):
    examples = tmp_path / "examples"
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((32, 32, 3), 100, np.uint8)
    write_shards(iter([make_example("a", encode_png(red), 0, "a"), make_example("b", encode_png(grey), 1, "b")]),
                 str(examples / "Split-train"), 1)
    cfg = small_config(str(tmp_path))
    out = transform.run(cfg, get_task(cfg.task), {"examples": str(examples)}, "r")
    stats = json.load(open(os.path.join(out.outputs["transform"], "stats.json")))
    # channel 0: half the pixels 255, half 100 -> mean 177.5, std 77.5; channels 1, 2: 0 and 100 -> 50, 50
    assert stats["mean"] == pytest.approx([177.5, 50.0, 50.0]) and stats["std"] == pytest.approx([77.5, 50.0, 50.0])
    assert stats["image_size"] == [32, 32] and stats["channels"] == 3
    assert not os.path.exists(os.path.join(out.outputs["transform"], "labels.txt"))  # one vocabulary, in examples
