"""ExampleGen: shards, counts, the one vocabulary, the source's own eval split, clean failures."""
import json
import os

import pytest

from kcv.data.errors import DataError
from pipelines.components import example_gen
from pipelines.tasks import get_task
from tests.pipelines.conftest import small_config


def test_artifact_layout_counts_and_vocabulary(pipeline_run):
    cfg, record = pipeline_run
    examples = record.artifacts["examples"]
    assert examples == os.path.join(cfg.paths.pipeline_root, "ExampleGen", "examples", record.run_id)
    counts = json.load(open(os.path.join(examples, "counts.json")))
    # 200 images, 20 per class -> floor(20 * 0.1) = 2 per class held out
    assert counts["train"] == 180 and counts["eval"] == 20
    assert set(counts["eval_per_class"].values()) == {2} and set(counts["train_per_class"].values()) == {18}
    assert counts["source"] == "embedded:shapes_kaggle_cifar10"
    assert sorted(os.listdir(os.path.join(examples, "Split-train"))) == [
        "data-00000-of-00002.tfrecord.gz", "data-00001-of-00002.tfrecord.gz"]
    vocab = open(os.path.join(examples, "labels.txt")).read().split()
    assert vocab == sorted(counts["train_per_class"]) and len(vocab) == 10
    assert record.data["source_fingerprint"] == counts["fingerprint"] and len(counts["fingerprint"]) == 64


def test_same_flags_same_examples(tmp_path):
    """A rerun writes the same examples (the resume fingerprint relies on it)."""
    cfg = small_config(str(tmp_path), **{"data.embedded_examples": 40})
    task = get_task(cfg.task)
    a = example_gen.run(cfg, task, {}, "a")
    b = example_gen.run(cfg, task, {}, "b")
    assert a.info["source_fingerprint"] == b.info["source_fingerprint"]
    other = example_gen.run(cfg.replace(**{"runtime.seed": 1}), task, {}, "c")
    assert other.info["source_fingerprint"] != a.info["source_fingerprint"]


def test_bananas_keep_their_own_validation_split(tmp_path):
    from pipelines.config import build_config

    cfg = build_config("tiny_ssd_bananas", {"paths": {"pipeline_root": str(tmp_path)},
                                            "data": {"embedded_examples": 30}})
    out = example_gen.run(cfg, get_task(cfg.task), {}, "r")
    counts = json.load(open(os.path.join(out.outputs["examples"], "counts.json")))
    assert counts["train"] == 30 and counts["eval"] == 20  # the generator's val split: max(20, n // 10)
    assert counts["max_objects"] == 1 and "train_per_class" not in counts  # one banana a scene, no image labels
    assert open(os.path.join(out.outputs["examples"], "labels.txt")).read() == "banana\n"


def test_unlabelled_points_are_held_out_at_random(tmp_path):
    from pipelines.config import build_config

    cfg = build_config("gan_gaussian", {"paths": {"pipeline_root": str(tmp_path)},
                                        "data": {"embedded_examples": 100}})
    out = example_gen.run(cfg, get_task(cfg.task), {}, "r")
    counts = json.load(open(os.path.join(out.outputs["examples"], "counts.json")))
    assert (counts["train"], counts["eval"]) == (90, 10) and "train_per_class" not in counts
    assert open(os.path.join(out.outputs["examples"], "labels.txt")).read() == ""


def test_bad_data_fails_before_anything_is_published(tmp_path):
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "trainLabels.csv").write_text("id,label\n1,cat\n2,dog\n")
    cfg = small_config(str(tmp_path), **{"data.data_dir": str(data)})
    with pytest.raises(DataError, match="2 files listed in trainLabels.csv are missing from train/: 1.png, 2.png"):
        example_gen.run(cfg, get_task(cfg.task), {}, "r")
    assert not os.path.exists(os.path.join(cfg.paths.pipeline_root, "ExampleGen"))
