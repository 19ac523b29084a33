"""Every benchmark script answers --help without importing TensorFlow; smoke runs are `large`."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = ["resnet18_train.py", "input_pipeline.py", "serving_latency.py", "startup.py", "dcgan_step.py",
           "gpu_check.py"]


def _run(args, timeout, **env_extra):
    env = dict(os.environ, PYTHONPATH=ROOT, **env_extra)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_the_common_flags(script):
    proc = _run([os.path.join("benchmarks", script), "--help"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--quick", "--json", "--smoke"):
        assert flag in proc.stdout


def test_help_does_not_import_tensorflow():
    code = ("import runpy, sys; sys.argv = ['resnet18_train.py', '--help']\n"
            "try:\n    runpy.run_path('benchmarks/resnet18_train.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    proc = _run(["-c", code], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_gpu_check_without_gpu_exits_cleanly():
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this checks the no-GPU path on every machine
    proc = _run(["benchmarks/gpu_check.py"], timeout=180, CUDA_VISIBLE_DEVICES="")
    assert proc.returncode == 0, proc.stderr
    assert "no GPU" in proc.stdout


@pytest.mark.large
@pytest.mark.parametrize("script", ["resnet18_train.py", "input_pipeline.py", "serving_latency.py",
                                    "startup.py", "dcgan_step.py"])
def test_smoke_run_prints_a_table(script, tmp_path):
    out = tmp_path / "out.json"
    proc = _run([os.path.join("benchmarks", script), "--smoke", f"--json={out}"], timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "median" in proc.stdout and "load average" in proc.stdout
    assert out.exists()


@pytest.mark.large
def test_gpu_check_runs_on_cpu_when_allowed(tmp_path):
    proc = _run(["benchmarks/gpu_check.py", "--allow_cpu", "--smoke"], timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "input pipeline alone" in proc.stdout
