"""kcv-predict on a pushed model: Kaggle submission formats (the model's own, or --submission), numeric id
order, plot, clear errors. The dog-breed default (probabilities) is tests/pipelines/dog_breeds_test.py."""
import csv
import os
import subprocess
import sys

import numpy as np
from PIL import Image
from tests.conftest import bomb_png

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
                      f"--output={out_csv}", f"--plot={plot}", "--batch_size=2")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = list(csv.reader(open(out_csv)))
    assert rows[0] == ["id", "label"]  # the CIFAR-10 model's own submission format, without --submission
    assert "(labels: the model's submission_format)" in out.stdout
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "10", "11"]
    # Not a terminal: one progress line per 10% step reached (batches of 2, 2, 1 of 5 images).
    progress = [line for line in out.stdout.splitlines() if line.startswith("kcv-predict: ")]
    assert [line.split(" images (")[0] for line in progress] == ["kcv-predict: 2/5", "kcv-predict: 4/5",
                                                                 "kcv-predict: 5/5"], out.stdout
    assert "(100%)" in progress[-1] and "images/s" in progress[-1]
    assert "images (" not in open(out_csv).read()
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


def _error(out) -> str:
    """The one kcv-predict error line (TensorFlow's start-up log lines aside)."""
    lines = [line for line in out.stderr.splitlines() if line.startswith("kcv-predict:")]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    return lines[0]


def test_over_limit_images_are_one_line_before_the_model(pipeline_run, tmp_path):
    cfg, _ = pipeline_run
    _images(tmp_path / "test", [1, 2])
    bomb = tmp_path / "test" / "3.png"
    bomb.write_bytes(bomb_png(20000, 20000))
    out_csv = tmp_path / "bomb.csv"
    args = [f"--model_dir={cfg.paths.serving_model_dir}", f"--input_dir={tmp_path / 'test'}", f"--output={out_csv}"]
    out = kcv_predict(*args)
    assert out.returncode == 1, out.stderr[-2000:]
    assert _error(out) == (f"kcv-predict: error: {bomb}: image is 20000x20000 = 400000000 pixels, "
                           "over the limit of 40000000 (--max_image_pixels)")
    assert not out_csv.exists()
    bomb.unlink()  # 1.png is 32x32 = 1024 pixels, 2.png 50x41 = 2050
    out = kcv_predict(*args, "--max_image_pixels=1000")
    assert out.returncode == 1 and not out_csv.exists()
    assert _error(out) == (f"kcv-predict: error: {tmp_path / 'test' / '1.png'}: image is 32x32 = 1024 pixels, "
                           "over the limit of 1000 (--max_image_pixels) (and 1 more images over the limit)")
    # Allowed here but over the limit the model was exported with: the model's refusal, one line.
    bomb.write_bytes(bomb_png(7000, 6000))
    out = kcv_predict(*args, "--max_image_pixels=50000000")
    assert out.returncode == 1 and not out_csv.exists(), out.stderr[-2000:]
    line = _error(out)
    assert "refused an image" in line, out.stderr[-2000:]
    assert "image is 7000x6000 = 42000000 pixels, over the limit of 40000000 (--max_image_pixels at export)" in line


def test_the_image_limit_defaults_agree_with_the_library():
    """kcv-predict and kcv-train write the default out (importing kcv would load TensorFlow before --help)."""
    code = ("from absl import flags; import pipelines.predict; from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS; "
            "from pipelines.config import DataConfig; "
            "print(flags.FLAGS['max_image_pixels'].default, DEFAULT_MAX_IMAGE_PIXELS, DataConfig().max_image_pixels)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=ENV)
    assert out.stdout.split() == ["40000000"] * 3, out.stderr[-2000:]


def test_read_batches_are_at_most_batch_size_and_in_order(tmp_path):
    from pipelines.predict import read_batches

    paths = []
    for i in range(7):
        paths.append(str(tmp_path / f"{i}.bin"))
        open(paths[-1], "wb").write(bytes([i]) * (i + 1))
    batches = [b.numpy().tolist() for b in read_batches(paths, 3)]
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sum(batches, []) == [bytes([i]) * (i + 1) for i in range(7)]


def test_a_truncated_image_is_one_line_and_leaves_no_csv(pipeline_run, tmp_path):
    """Its header passes the first pass; the model's decoder refuses it."""
    cfg, _ = pipeline_run
    _images(tmp_path / "test", [1, 2])
    whole = (tmp_path / "test" / "2.png").read_bytes()
    (tmp_path / "test" / "2.png").write_bytes(whole[:len(whole) // 2])
    out_csv = tmp_path / "cut.csv"
    out = kcv_predict(f"--model_dir={cfg.paths.serving_model_dir}", f"--input_dir={tmp_path / 'test'}",
                      f"--output={out_csv}")
    assert out.returncode == 1 and not out_csv.exists(), out.stderr[-2000:]
    assert "refused an image" in _error(out)


def test_submission_format_is_the_flag_else_the_models_else_labels():
    from types import SimpleNamespace

    from pipelines.predict import submission_format

    def model(value):
        return SimpleNamespace(submission_format=SimpleNamespace(numpy=lambda: value))

    assert submission_format(model(b"probabilities"), None) == ("probabilities", "the model's submission_format")
    assert submission_format(model(b"probabilities"), "labels") == ("labels", "--submission")
    assert submission_format(SimpleNamespace(), None)[0] == "labels"  # exported before models said
