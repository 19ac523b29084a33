"""kcv-predict on a pushed model: Kaggle submission formats, numeric id order, plot, clear errors."""
import csv
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def kcv_predict(*args):
    return subprocess.run([sys.executable, "-m", "pipelines.predict", *args], capture_output=True, text=True,
                          timeout=300, env=ENV)


def _images(folder, ids):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in ids:
        size = (32, 32) if i % 2 else (50, 41)  # any size: resized inside the graph
        Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(os.path.join(folder, f"{i}.png"))


def test_labels_submission_sorted_numerically_with_plot(pipeline_run, tmp_path):
    cfg, record = pipeline_run
    _images(tmp_path / "test", [1, 2, 10, 11, 3])
    out_csv, plot = tmp_path / "sub" / "submission.csv", tmp_path / "grid.png"
    out = kcv_predict(f"--model_dir={cfg.paths.serving_model_dir}", "--version=1", f"--input_dir={tmp_path / 'test'}",
                      f"--output={out_csv}", f"--plot={plot}")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = list(csv.reader(open(out_csv)))
    assert rows[0] == ["id", "label"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "10", "11"]
    vocab = open(os.path.join(record.artifacts["examples"], "labels.txt")).read().split()
    assert all(r[1] in vocab for r in rows[1:])
    assert Image.open(plot).size[0] > 100


def test_probabilities_submission_rows_sum_to_one(pipeline_run, tmp_path):
    cfg, _ = pipeline_run
    _images(tmp_path / "test", [5, 4])
    out_csv = tmp_path / "probs.csv"
    out = kcv_predict(f"--model_dir={cfg.paths.serving_model_dir}", f"--input_dir={tmp_path / 'test'}",
                      f"--output={out_csv}", "--submission=probabilities")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = list(csv.reader(open(out_csv)))
    assert rows[0][0] == "id" and len(rows[0]) == 11 and [r[0] for r in rows[1:]] == ["4", "5"]
    for r in rows[1:]:
        assert abs(sum(float(v) for v in r[1:]) - 1.0) < 1e-4


def test_errors_are_one_line_and_leave_no_csv(pipeline_run, tmp_path):
    cfg, _ = pipeline_run
    _images(tmp_path / "test", [1, 2])
    open(tmp_path / "test" / "3.png", "wb").close()
    out_csv = tmp_path / "bad.csv"
    out = kcv_predict(f"--model_dir={cfg.paths.serving_model_dir}", f"--input_dir={tmp_path / 'test'}", f"--output={out_csv}")
    assert out.returncode == 1 and "kcv-predict: error: 1 unreadable images" in out.stderr
    assert not out_csv.exists()
    out = kcv_predict(f"--model_dir={cfg.paths.serving_model_dir}", "--version=99", f"--input_dir={tmp_path}", f"--output={out_csv}")
    assert out.returncode == 1 and "--version=99 not found" in out.stderr
    out = kcv_predict(f"--model_dir={tmp_path}/nothing", f"--input_dir={tmp_path}", f"--output={out_csv}")
    assert out.returncode == 1 and "does not exist" in out.stderr and "Traceback" not in out.stderr
