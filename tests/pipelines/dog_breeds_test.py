"""dog_breeds end to end on generated dog-layout data with random weights, and the offline weights error."""
import csv
import glob
import os
import subprocess
import sys

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(args, cwd, env=ENV):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


def test_trains_pushes_and_writes_a_probability_submission(tmp_path):
    out = _run(["pipelines.train", "--experiment=dog_breeds", "--weights=none", "--image_size=64,64",
                "--keep_imagenet_top=false", "--embedded_examples=60", "--epochs=1", "--batch_size=8"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.isdir(tmp_path / "saved_models" / "dog_breeds" / "1")
    data = glob.glob(str(tmp_path / "runs/dog_breeds/embedded_data/*"))[0]
    breeds = sorted({row["breed"] for row in csv.DictReader(open(os.path.join(data, "labels.csv")))})
    out = _run(["pipelines.predict", "--model_dir=saved_models/dog_breeds", f"--input_dir={data}/test",
                "--output=submission.csv", "--submission=probabilities"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.reader(open(tmp_path / "submission.csv")))
    assert rows[0] == ["id", *breeds]  # Kaggle's header: id, then one column per breed in vocabulary order
    assert len(rows) - 1 == len(os.listdir(os.path.join(data, "test")))
    for row in rows[1:]:
        assert len(row[0]) == 32 and abs(sum(float(v) for v in row[1:]) - 1.0) < 1e-4


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
