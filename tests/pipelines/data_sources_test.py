"""kcv-train --source: data people already have (a prepared tfds folder, CIFAR-10 as class folders)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def kcv_train(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pipelines.train", "--experiment=resnet18_cifar10", *args,
                           f"--pipeline_root={cwd}/runs", f"--serving_model_dir={cwd}/saved_models/m"],
                          capture_output=True, text=True, timeout=600, cwd=cwd, env=ENV)


def _record(cwd):
    (name,) = os.listdir(os.path.join(cwd, "runs", "runs"))
    return json.load(open(os.path.join(cwd, "runs", "runs", name)))


def _prepared_tfds_cifar10(data_dir):
    """A tensorflow-datasets `cifar10` folder prepared offline: 40 train and 20 test images, the
    registered builder's version and features, so tfds.builder("cifar10", data_dir) reads it as is."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    version = tfds.builder("cifar10", data_dir=data_dir).info.version
    features = tfds.features.FeaturesDict({"id": tfds.features.Text(), "image": tfds.features.Image(shape=(32, 32, 3)),
                                           "label": tfds.features.ClassLabel(names=CIFAR10)})

    def split(n, seed):
        rng = np.random.default_rng(seed)
        return tf.data.Dataset.from_tensor_slices({"id": [f"{seed}_{i}" for i in range(n)],
                                                   "image": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                                                   "label": np.arange(n) % 10})

    tfds.dataset_builders.TfDataBuilder(name="cifar10", version=str(version), features=features, data_dir=data_dir,
                                        split_datasets={"train": split(40, 0), "test": split(20, 1)}
                                        ).download_and_prepare()


@pytest.mark.large  # an end-to-end run (~1 minute or more on 2 cores)
def test_a_prepared_tfds_cifar10_folder_trains_resnet18_cifar10(tmp_path):
    _prepared_tfds_cifar10(str(tmp_path / "tfds"))
    out = kcv_train("--source=tfds:cifar10", f"--data_dir={tmp_path / 'tfds'}", "--epochs=1", "--steps_per_epoch=1",
                    "--batch_size=8", "--min_accuracy=0", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    record = _record(tmp_path)
    counts = json.load(open(os.path.join(record["artifacts"]["examples"], "counts.json")))
    assert counts["source"] == "tfds:cifar10" and (counts["train"], counts["eval"]) == (40, 20)  # tfds' own test split
    assert open(os.path.join(record["artifacts"]["examples"], "labels.txt")).read().split() == CIFAR10
    summary = json.load(open(os.path.join(record["artifacts"]["model"], "training_summary.json")))
    assert summary["steps_per_epoch"] == 1 and len(summary["history"]["loss"]) == 1


@pytest.mark.large  # an end-to-end run (~1 minute or more on 2 cores)
def test_cifar10_as_class_folders_trains_resnet18_cifar10(tmp_path):
    rng = np.random.default_rng(0)
    for name in CIFAR10:
        os.makedirs(tmp_path / "cifar" / "train" / name)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "cifar" / "train" / name / f"{i}.png")
    out = kcv_train("--source=class_folders", f"--data_dir={tmp_path / 'cifar' / 'train'}", "--epochs=1",
                    "--steps_per_epoch=1", "--batch_size=8", "--min_accuracy=0", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    counts = json.load(open(os.path.join(_record(tmp_path)["artifacts"]["examples"], "counts.json")))
    assert counts["source"] == "class_folders" and (counts["train"], counts["eval"]) == (90, 10)  # 1 per class held out


def test_a_source_the_task_cannot_read_fails_before_any_work(tmp_path):
    out = kcv_train("--source=bananas", f"--data_dir={tmp_path}", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "kcv-train: error: --source=bananas cannot feed the classification task of resnet18_cifar10; "
        "use one of kaggle_cifar10, kaggle_dog, class_folders, tfds:*")
    assert not os.path.exists(tmp_path / "runs" / "ExampleGen")


def test_an_augmentation_the_task_does_not_apply_is_refused_before_any_work(tmp_path):
    out = kcv_train("--augment=boxes", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "kcv-train: error: --augment=boxes does not apply to the classification task of resnet18_cifar10; "
        "use one of none, flip, cifar, translate, imagenet")
    assert not os.path.exists(tmp_path / "runs" / "ExampleGen")
