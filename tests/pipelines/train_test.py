"""kcv-train as a user runs it: flags, config.json, one-line errors, nothing pushed on failure."""
import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def kcv_train(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipelines.train", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=ENV)


def test_help_and_list_experiments():
    out = kcv_train("--help")
    assert out.returncode == 0 and "--experiment" in out.stdout and "--lr_schedule" in out.stdout
    out = kcv_train("--list_experiments")
    assert out.returncode == 0
    for name in ("resnet18_cifar10", "lenet_bn_fashion_mnist", "resnet18_fashion_mnist", "densenet_fashion_mnist"):
        assert name in out.stdout


@pytest.mark.parametrize("args, message", [
    ([], "--experiment is required"),
    (["--experiment=nope"], "unknown experiment 'nope'"),
    (["--experiment=resnet18_cifar10", "--lr_schedule=wiggly"], "(--lr_schedule) 'wiggly': unknown schedule"),
    (["--experiment=resnet18_cifar10", "--epochs=0"], "--epochs"),
    (["--experiment=resnet18_cifar10", "--strategy=quantum"], "--strategy"),
    (["--experiment=resnet18_cifar10", "--components=Trainer,Polisher"], "unknown components ['Polisher']"),
])
def test_bad_flags_are_one_line_usage_errors(tmp_path, args, message):
    out = kcv_train(*args, f"--pipeline_root={tmp_path}/runs", cwd=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr and "Traceback" not in out.stderr


def test_bad_data_dir_fails_cleanly_and_pushes_nothing(tmp_path):
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "trainLabels.csv").write_text("id,label\n1,cat\n2,dog\n")
    out = kcv_train("--experiment=resnet18_cifar10", f"--data_dir={data}", f"--pipeline_root={tmp_path}/runs",
                    f"--serving_model_dir={tmp_path}/saved_models/m", cwd=tmp_path)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last == ("kcv-train: error: ExampleGen: 2 files listed in trainLabels.csv are missing from train/: "
                    "1.png, 2.png")
    assert "Traceback" not in out.stderr
    assert not os.path.exists(tmp_path / "saved_models")
    assert sorted(os.listdir(tmp_path / "runs")) == ["config.json", "runs"]  # nothing but the config and the record
    (name,) = os.listdir(tmp_path / "runs" / "runs")
    record = json.load(open(tmp_path / "runs" / "runs" / name))
    assert record["status"] == "failed" and record["components"]["ExampleGen"]["status"] == "failed"
    assert "missing from train/" in record["components"]["ExampleGen"]["error"]


def test_quick_end_to_end_run_through_the_binary(tmp_path):
    out = kcv_train("--experiment=resnet18_cifar10", "--model=simple_cnn", "--embedded_examples=100",
                    "--epochs=1", "--batch_size=10", "--min_accuracy=0", f"--pipeline_root={tmp_path}/runs",
                    f"--serving_model_dir={tmp_path}/saved_models/quick", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"Pusher: pushed version 1 to {tmp_path}/saved_models/quick/1" in out.stdout
    cfg = json.load(open(tmp_path / "runs" / "config.json"))
    assert cfg["model"]["name"] == "simple_cnn" and cfg["model"]["kwargs"] == {} and cfg["training"]["epochs"] == 1
    first = out.stdout.strip().splitlines()[-1].removeprefix("run record: ")
    assert json.load(open(first))["config"] == cfg
    # not blessed: clear message, exit 1, nothing new pushed
    out = kcv_train("--experiment=resnet18_cifar10", "--model=simple_cnn", "--embedded_examples=100",
                    "--components=Evaluator,Pusher", "--min_accuracy=1.01", f"--pipeline_root={tmp_path}/runs",
                    f"--serving_model_dir={tmp_path}/saved_models/quick", cwd=tmp_path)
    assert out.returncode == 3  # refused, not broken: its own documented exit status
    assert out.stderr.strip().splitlines()[-1].startswith(
        "kcv-train: error: Pusher: model not blessed, nothing pushed: accuracy")
    assert sorted(d for d in os.listdir(tmp_path / "saved_models" / "quick") if not d.startswith(".")) == ["1"]
    # the partial run continued the first one: its Evaluator scored exactly that run's model
    parent = json.load(open(first))
    (second,) = [f for f in os.listdir(tmp_path / "runs" / "runs") if f != os.path.basename(first)]
    record = json.load(open(tmp_path / "runs" / "runs" / second))
    assert record["parent_run"] == parent["run_id"] and record["status"] == "failed"
    assert record["components"]["Evaluator"]["inputs"]["model"] == parent["artifacts"]["model"]


def test_unknown_flag_is_one_line():
    out = kcv_train("--no_such_flag=1")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == ["kcv-train: error: Unknown command line flag 'no_such_flag' (see --help)"]
