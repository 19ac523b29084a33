"""The README's main job, end to end (large): kcv-train on embedded data, then kcv-predict."""
import csv
import glob
import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SHARED_KAGGLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "kaggle_cifar10_small.tar.gz")


def _run(args, cwd, timeout=1800):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=ENV,
                          timeout=timeout)


@pytest.mark.large
def test_main_job_trains_pushes_and_predicts(tmp_path):
    out = _run(["pipelines.train", "--experiment=resnet18_cifar10"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.isfile(tmp_path / "saved_models" / "resnet18_cifar10" / "1" / "saved_model.pb")
    metrics = json.load(open(glob.glob(str(tmp_path / "runs/resnet18_cifar10/Evaluator/evaluation/*/metrics.json"))[0]))
    assert metrics["accuracy"] >= 0.3 and metrics["blessed"]  # 10 classes: chance is 0.1
    test_dir = glob.glob(str(tmp_path / "runs/resnet18_cifar10/embedded_data/*/test"))[0]
    out = _run(["pipelines.predict", "--model_dir=saved_models/resnet18_cifar10", f"--input_dir={test_dir}",
                "--output=submission.csv"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.reader(open(tmp_path / "submission.csv")))
    assert rows[0] == ["id", "label"] and len(rows) == 1 + len(os.listdir(test_dir))


@pytest.mark.large
@pytest.mark.skipif(not os.path.exists(SHARED_KAGGLE), reason="needs ../shared/data/kaggle_cifar10_small.tar.gz")
def test_real_kaggle_layout_trains_unchanged(tmp_path):
    subprocess.run(["tar", "-xzf", SHARED_KAGGLE, "-C", str(tmp_path)], check=True)
    data = tmp_path / "kaggle_cifar10_small"
    out = _run(["pipelines.train", "--experiment=resnet18_cifar10", f"--data_dir={data}", "--epochs=2",
                "--min_accuracy=0"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    counts = json.load(open(glob.glob(str(tmp_path / "runs/resnet18_cifar10/ExampleGen/examples/*/counts.json"))[0]))
    assert counts["train"] + counts["eval"] == 2000 and len(counts["eval_per_class"]) == 10
    out = _run(["pipelines.predict", "--model_dir=saved_models/resnet18_cifar10", f"--input_dir={data / 'test'}",
                "--output=submission.csv"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.reader(open(tmp_path / "submission.csv")))
    assert len(rows) == 501 and [int(r[0]) for r in rows[1:]] == sorted(int(r[0]) for r in rows[1:])
