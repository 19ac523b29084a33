"""kcv-optim: the binary in a subprocess (help, one demo, errors) and each demo's output in-process."""
import csv
import math
import os
import subprocess
import sys

import pytest

from pipelines import optim_demo

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_binary(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "pipelines.optim_demo", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_help_lists_demos_and_does_not_import_tensorflow():
    proc = subprocess.run([sys.executable, "-c",
                           "import sys; sys.argv = ['kcv-optim', '--help']\n"
                           "from pipelines import optim_demo\n"
                           "assert 'tensorflow' not in sys.modules, 'tensorflow imported at module level'\n"
                           "optim_demo.run()"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "gd1d|gd2d|newton|precondition|sgd|schedules|convexity" in proc.stdout
    assert "--output" in proc.stdout


def test_gd2d_binary_writes_png_and_csv(tmp_path):
    out = tmp_path / "out"
    proc = run_binary("--demo=gd2d", f"--output={out}")
    assert proc.returncode == 0, proc.stderr
    assert "epoch 20, x1: -0.057646, x2: -0.000073" in proc.stdout.splitlines()
    assert sorted(os.listdir(out)) == ["gd2d_eta_0.1.csv", "gd2d_eta_0.1.png"]
    with open(out / "gd2d_eta_0.1.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    rows = read_csv(out / "gd2d_eta_0.1.csv")
    assert rows[0] == ["step", "x1", "x2", "f"]
    assert rows[1] == ["0", "-5.0", "-2.0", "33.0"]  # f(-5, -2) = 25 + 2·4
    assert len(rows) == 22 and rows[-1][0] == "20"
    x1, x2, f = map(float, rows[-1][1:])
    # -5·0.8^20, -2·0.6^20, and f = x1² + 2·x2²
    assert x1 == pytest.approx(-0.057646, abs=1e-5) and x2 == pytest.approx(-0.000073, abs=1e-5)
    assert f == pytest.approx(x1**2 + 2 * x2**2)


@pytest.mark.parametrize(
    "args, message",
    [(["--demo=bogus", "--output={tmp}/o"], "kcv-optim: error: --demo=bogus is not a demo; valid: gd1d|gd2d|"),
     (["--output={tmp}/o"], "kcv-optim: error: --demo is required"),
     (["--demo=gd1d"], "kcv-optim: error: --output is required"),
     (["--demo=gd1d", "--output={tmp}/file"], "exists and is not a folder"),
     (["--demo=gd1d", "--output={tmp}/file/sub"], "kcv-optim: error: cannot create --output="),
     (["--demo=gd1d", "--output={tmp}/o", "extra"], "kcv-optim: error: unexpected arguments: extra")],
)
def test_bad_flags_give_one_line_error(tmp_path, args, message):
    (tmp_path / "file").write_text("not a folder")
    proc = run_binary(*(a.format(tmp=tmp_path) for a in args))
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("kcv-optim")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # nothing written for a bad demo


def test_gd1d_lines_and_csvs():
    out = optim_demo.demo_gd1d(seed=0)
    for line in ["epoch 10, x: 0.060466", "epoch 10, x: 3.486784", "epoch 10, x: 61.917364",
                 "epoch 10, x: -1.528166"]:
        assert line in out.lines
    assert sorted(out.csvs) == sorted(out.figures) == sorted(
        ["gd1d_eta_0.2", "gd1d_eta_0.05", "gd1d_eta_1.1", "gd1d_nonconvex_eta_2"])
    lines = out.csvs["gd1d_eta_0.2"].splitlines()
    assert lines[0] == "step,x,f" and lines[1] == "0,10.0,100.0"
    step, x, f = lines[-1].split(",")
    assert step == "10" and float(x) == pytest.approx(10 * 0.6**10) and float(f) == pytest.approx(float(x) ** 2)


def test_newton_lines():
    out = optim_demo.demo_newton(seed=0)
    # torch prints these with 4 decimals: tensor(0.), tensor(26.8341), tensor(7.2699)
    for line in ["epoch 10, x: 0.0000", "epoch 10, x: 26.8341", "epoch 10, x: 7.2699"]:
        assert line in out.lines
    last = out.csvs["newton_nonconvex_eta_1"].splitlines()[-1].split(",")
    assert float(last[1]) == pytest.approx(26.834133, abs=1e-5)


def test_precondition_and_sgd_outputs():
    pre = optim_demo.demo_precondition(seed=0)
    assert sorted(pre.csvs) == ["precondition_diag", "precondition_plain"]
    # preconditioned: both axes shrink by 0.6 per step: -5·0.6^20 = -0.000183, -2·0.6^20 = -0.000073
    assert "epoch 20, x1: -0.000183, x2: -0.000073" in pre.lines
    a = optim_demo.demo_sgd(seed=4)  # (same seed, same run: tests/kcv/optim/sgd_test.py)
    assert "SGD, η = 0.1·lr(t) = exp(-0.1t), seed 4 -> sgd_exponential.png, sgd_exponential.csv" in a.lines
    assert sorted(a.csvs) == ["sgd_constant", "sgd_exponential", "sgd_polynomial"]
    rows = a.csvs["sgd_exponential"].splitlines()
    assert rows[0] == "step,x1,x2,f" and len(rows) == 1002
    assert any(line.startswith("epoch 1000, x1: ") for line in a.lines)


def test_schedules_lines():
    out = optim_demo.demo_schedules(seed=0)
    assert len(out.figures) == 8 and not out.csvs
    text = "\n".join(out.lines)
    # cosine 0.3 -> 0.01 over 20 epochs: epoch 10 is the midpoint (0.3 + 0.01)/2 = 0.155
    assert "lr[10]=0.155000" in text
    # warm-up 5: epoch 10 = 0.01 + 0.145·(1 + cos(π/3)) = 0.2275
    assert "lr[10]=0.227500" in text
    # square root: 0.1·16^-0.5 = 0.025 at epoch 15
    assert "lr[15]=0.025000" in text


def test_write_outputs_convexity(tmp_path):
    out = optim_demo.demo_convexity(seed=0)
    written = optim_demo.write_outputs(out, str(tmp_path))
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(f"{n}.png" for n in ["local_global_minimum", "saddle_x3", "saddle_x2_minus_y2",
                                                 "vanishing_gradient", "convex_functions", "convex_sets",
                                                 "local_minima_convex", "jensen"])
    assert len(written) == 8 and all(os.path.getsize(p) > 1000 for p in written)
    # tanh'(4) = 1 - tanh(4)² = 0.001341
    assert f"vanishing gradient: tanh'(4) = {1 - math.tanh(4) ** 2:.6f}" in out.lines
    assert "cos(πx) -1.000000 (not)" in out.lines[0]


def test_write_outputs_leaves_nothing_on_failure(tmp_path):
    out = optim_demo.DemoOutput(csvs={"a": "step,x,f\n", "b/c": "step,x,f\n"})  # 'b/' does not exist
    with pytest.raises(optim_demo.DemoError, match="cannot write into --output="):
        optim_demo.write_outputs(out, str(tmp_path))
    assert os.listdir(tmp_path) == []
