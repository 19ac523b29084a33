"""dog_breeds end to end on generated dog-layout data with random weights (two fine-tuning phases, the
probability submission by default), and the offline weights error."""
import csv
import glob
import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(args, cwd, env=ENV):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.mark.large  # an end-to-end run (~1 minute or more on 2 cores)
def test_two_phases_push_a_model_that_writes_the_dog_submission_by_default(tmp_path):
    """The preset's two phases (head on a frozen backbone, then its top layers too at a tenth of the
    learning rate), and kcv-predict writing Kaggle's dog-breed format without being told."""
    out = _run(["pipelines.train", "--experiment=dog_breeds", "--weights=none", "--image_size=64,64",
                "--keep_imagenet_top=false", "--embedded_examples=60", "--epochs=1", "--fine_tune_epochs=1",
                "--batch_size=8"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.isdir(tmp_path / "saved_models" / "dog_breeds" / "1")
    (record,) = glob.glob(str(tmp_path / "runs/dog_breeds/runs/*.json"))
    head, top = json.load(open(record))["components"]["Trainer"]["phases"]
    assert (head["phase"], head["epochs"], head["trainable_layers"]) == (1, 1, 0)
    assert (top["phase"], top["epochs"], top["trainable_layers"]) == (2, 1, 7)
    assert top["lr"] == pytest.approx(head["lr"] * 0.1) and head["lr"] == pytest.approx(3.2e-3)
    # phase 1: the head of 2048*256+256 + 256*5+5; phase 2 adds ResNet-50's conv5_block3 and conv5_block2_3_bn
    assert head["trainable_params"] == 2048 * 256 + 256 + 256 * 5 + 5
    assert top["trainable_params"] - head["trainable_params"] == (
        2 * 2048 + 2048 * 512 + 512 + 2 * 512 + 3 * 3 * 512 * 512 + 512 + 2 * 512 + 512 * 2048 + 2048 + 2 * 2048)
    # BatchNorm in inference mode and the frozen layers frozen: nothing outside the trainable set moved
    assert not head["non_trainable_changed"] and not top["non_trainable_changed"]
    logs = tmp_path / "runs/dog_breeds/Trainer/model_run"
    assert {os.path.basename(p) for p in glob.glob(str(logs / "*" / "phase_*"))} == {"phase_1", "phase_2"}

    data = glob.glob(str(tmp_path / "runs/dog_breeds/embedded_data/*"))[0]
    breeds = sorted({row["breed"] for row in csv.DictReader(open(os.path.join(data, "labels.csv")))})
    out = _run(["pipelines.predict", "--model_dir=saved_models/dog_breeds", f"--input_dir={data}/test",
                "--output=submission.csv"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(probabilities: the model's submission_format)" in out.stdout
    rows = list(csv.reader(open(tmp_path / "submission.csv")))
    # Kaggle's header: id, then one column per breed in sorted order (as its sample_submission.csv)
    assert rows[0] == ["id", *breeds] == next(csv.reader(open(os.path.join(data, "sample_submission.csv"))))
    assert len(rows) - 1 == len(os.listdir(os.path.join(data, "test")))
    for row in rows[1:]:
        assert len(row[0]) == 32 and abs(sum(float(v) for v in row[1:]) - 1.0) < 1e-4
    out = _run(["pipelines.predict", "--model_dir=saved_models/dog_breeds", f"--input_dir={data}/test",
                "--output=labels.csv", "--submission=labels"], tmp_path)  # the flag overrides the model
    assert out.returncode == 0 and "(labels: --submission)" in out.stdout, out.stderr[-3000:]
    rows = list(csv.reader(open(tmp_path / "labels.csv")))
    assert rows[0] == ["id", "label"] and all(r[1] in breeds for r in rows[1:])


def test_missing_imagenet_weights_fail_before_any_work(tmp_path):
    env = {**ENV, "KERAS_HOME": str(tmp_path / "empty_keras_home")}
    out = _run(["pipelines.train", "--experiment=dog_breeds"], tmp_path, env=env)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("kcv-train: error: ImageNet weights for resnet50 are not in the Keras cache")
    assert "--weights" in lines[-1] and "--download" in lines[-1] and "Traceback" not in out.stderr
    assert not os.path.exists(tmp_path / "runs" / "dog_breeds" / "ExampleGen")


def test_fine_tuning_flags_are_refused_elsewhere(tmp_path):
    out = _run(["pipelines.train", "--experiment=resnet18_cifar10", "--backbone=resnet50"], tmp_path)
    assert out.returncode == 1 and "--backbone applies to fine-tuning experiments" in out.stderr
