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


# ---- the demos of issue #17, through run_demo (what main does after the flags parse) ----------
def test_new_demos_are_listed():
    assert optim_demo.DEMOS[-4:] == ("risk", "second_order", "constraints", "line_search")
    assert set(optim_demo.DEMOS) == set(optim_demo.BUILDERS)
    for name in optim_demo.DEMOS[-4:]:
        assert f"- {name}:" in optim_demo.__doc__


def test_risk_binary_writes_png_and_csvs(tmp_path):
    out = tmp_path / "out"
    proc = run_binary("--demo=risk", f"--output={out}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "min of risk: x = 1.090408, f(x) = -1.046721" in lines
    assert "min of empirical risk: x = 1.016983, g(x) = -1.208461" in lines
    assert lines[-1] == f"kcv-optim: wrote 3 files to {out}"
    assert sorted(os.listdir(out)) == ["risk.csv", "risk.png", "risk_minima.csv"]
    rows = read_csv(out / "risk.csv")
    assert rows[0] == ["x", "risk", "empirical_risk"] and len(rows) == 102  # 0.5, 0.51, ..., 1.5
    x, f, g = map(float, rows[51])  # x = 1: f = -1, g = -1 + 0.2·cos(5π) = -1.2
    assert (x, f, g) == (pytest.approx(1.0), pytest.approx(-1.0), pytest.approx(-1.2))
    minima = read_csv(out / "risk_minima.csv")
    assert [r[0] for r in minima] == ["function", "risk", "empirical_risk"]
    assert float(minima[1][1]) == pytest.approx(1.090408, abs=1e-6)


def test_second_order_demo(tmp_path):
    lines = optim_demo.run_demo("second_order", str(tmp_path), 0)
    assert sorted(os.listdir(tmp_path)) == ["below_sets.png", "second_order.csv", "second_order_curvature.png"]
    assert lines[-1] == f"kcv-optim: wrote 3 files to {tmp_path}"
    text = "\n".join(lines)
    assert "sampled segments stay inside: True -> convex" in lines[0]
    assert "midpoint (0.0, 0.0) value 0.500000; sampled segments stay inside: False -> not convex" in lines[1]
    # f'' of x³ on [-2, 2] is 6x >= -12; cos(πx): -π²; the book's wavy 2-D function: -2π²
    assert "min eigenvalue -12.000000 at x=-2: not convex" in text
    assert "min eigenvalue -9.869604 at x=-2: not convex" in text
    assert "min eigenvalue -19.739209 at x=(-1.0, -1.0): not convex" in text
    rows = read_csv(tmp_path / "second_order.csv")
    assert rows[0] == ["function", "domain", "min_eigenvalue", "at", "convex"]
    verdict = {(r[0], r[1]): r[4] for r in rows[1:]}
    assert verdict[("x³", "[0, 2]")] == "True" and verdict[("x³", "[-2, 2]")] == "False"
    assert verdict[("x1² + 2x2²", "[-1, 1]²")] == "True" and verdict[("x1² - x2²", "[-1, 1]²")] == "False"
    assert len(rows) == 13


def test_constraints_demo(tmp_path):
    lines = optim_demo.run_demo("constraints", str(tmp_path), 0)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["lagrangian_saddle.png", "lagrangian_gda.csv", "penalty.png", "penalty.csv", "projections.png",
         "projected_gd.png", "pgd_ball.csv", "pgd_box.csv"])
    text = "\n".join(lines)
    assert "step 200, x1: 0.500000, x2: 0.500000, α: 1.000000, L: 0.500000" in text
    # penalty weight 10: 10/21 = 0.476190, c = 1/21 = 0.047619, 2w·c = 20/21 = 0.952381
    assert "w = 10: x1 = 0.476190, x2 = 0.476190 (w/(1+2w) = 0.476190), c(x) = 0.047619, 2w·c(x) = 0.952381" in lines
    assert "unit ball -> pgd_ball.csv: epoch 50, x1: 0.815220, x2: 0.579152, ‖x‖ = 1.000000" in lines
    assert "box [-1, 1] x [-1, 0.5] -> pgd_box.csv: epoch 50, x1: 1.000000, x2: 0.500000, ‖x‖ = 1.118034" in lines
    assert "(-3.796283, -3.253957) = Proj onto the ball of radius 5 (= tf.clip_by_norm: True)" in text
    assert "onto the unit ℓ1 ball (1.000000, 0.000000) (sparse)" in text
    penalty = read_csv(tmp_path / "penalty.csv")
    assert penalty[0] == ["weight", "x1", "x2", "closed_form", "violation", "multiplier_estimate"]
    for row in penalty[1:]:
        w, x1, x2, closed = map(float, row[:4])
        assert x1 == pytest.approx(w / (1 + 2 * w)) and x2 == pytest.approx(closed)
    gda = read_csv(tmp_path / "lagrangian_gda.csv")
    assert gda[0] == ["step", "x1", "x2", "alpha", "L"] and gda[2] == ["1", "0.0", "0.0", "0.1", "0.1"]
    assert read_csv(tmp_path / "pgd_ball.csv")[0] == ["step", "x1", "x2", "f"]


def test_line_search_demo(tmp_path):
    lines = optim_demo.run_demo("line_search", str(tmp_path), 0)
    csvs = ["line_search_1d_backtracking", "line_search_1d_eta_0.2", "line_search_1d_eta_0.05",
            "line_search_1d_eta_1.1", "line_search_2d_backtracking", "line_search_2d_eta_0.1", "line_search_exercise"]
    pngs = ["line_search_1d", "line_search_2d", "line_search_convergence"]
    assert sorted(os.listdir(tmp_path)) == sorted([f"{n}.csv" for n in csvs] + [f"{n}.png" for n in pngs])
    # the book's fixed-rate numbers, and the line search where η = 1.1 diverges
    for line in ["epoch 10, x: 0.060466", "epoch 10, x: 3.486784", "epoch 10, x: 61.917364",
                 "epoch 20, x1: -0.057646, x2: -0.000073"]:
        assert line in lines
    assert "  accepted η in {0.55}, 20 evaluations of f for 10 updates; x = (1e-09), f = 1e-18" in lines
    assert any("closed form (ln 2 - 3)/3 = -0.768951" in line and "x: -0.768951" in line for line in lines)
    rows = read_csv(tmp_path / "line_search_1d_backtracking.csv")
    assert rows[0] == ["step", "x", "f", "eta", "trials"]
    assert rows[1] == ["0", "10.0", "100.0", "0.55", "2"] and rows[2][:2] == ["1", "-1.0"]
    assert rows[-1][0] == "10" and rows[-1][3:] == ["", ""]
    fixed = read_csv(tmp_path / "line_search_1d_eta_1.1.csv")
    assert fixed[0] == ["step", "x", "f"] and float(fixed[-1][1]) == pytest.approx(10 * 1.2**10)


def test_run_demo_errors_match_the_binary(tmp_path):
    with pytest.raises(optim_demo.DemoError, match=r"^--demo=lines is not a demo; valid: gd1d\|.*\|line_search$"):
        optim_demo.run_demo("lines", str(tmp_path / "o"), 0)
    assert not (tmp_path / "o").exists()
    with pytest.raises(optim_demo.DemoError, match="--output is required"):
        optim_demo.run_demo("risk", None, 0)


def test_trajectory_csv_extra_columns():
    from kcv import optim
    traj = optim.gradient_descent(optim.square, 1.0, 0.25, steps=2)  # 1 -> 0.5 -> 0.25
    text = optim_demo.trajectory_csv(traj, {"eta": traj.lrs})
    assert text.splitlines() == ["step,x,f,eta", "0,1.0,1.0,0.25", "1,0.5,0.25,0.25", "2,0.25,0.0625,"]
    assert optim_demo.trajectory_csv(traj) == "step,x,f\n0,1.0,1.0\n1,0.5,0.25\n2,0.25,0.0625\n"
