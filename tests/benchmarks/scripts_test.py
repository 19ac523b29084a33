"""Every benchmark script answers --help without importing TensorFlow; the GPU check runs on the CPU
(--allow_cpu); the other scripts' smoke runs are `large`."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = ["resnet18_train.py", "input_pipeline.py", "serving_latency.py", "startup.py", "dcgan_step.py", "detectors.py",
           "gpu_check.py", "predict_throughput.py"]


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
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no GPU visible to TensorFlow"), proc.stdout
    assert "--allow_cpu" in lines[0]


@pytest.mark.large
@pytest.mark.parametrize("script", ["resnet18_train.py", "input_pipeline.py", "serving_latency.py",
                                    "startup.py", "dcgan_step.py", "predict_throughput.py"])
def test_smoke_run_prints_a_table(script, tmp_path):
    out = tmp_path / "out.json"
    proc = _run([os.path.join("benchmarks", script), "--smoke", f"--json={out}"], timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "median" in proc.stdout and "load average" in proc.stdout
    assert out.exists()


@pytest.mark.large  # an end-to-end run (~1 minute or more on 2 cores)
def test_gpu_check_runs_on_cpu_when_allowed(tmp_path):
    # The whole GPU check on tiny sizes, two logical CPUs standing in for two GPUs (~30 s here).
    out = tmp_path / "out.json"
    proc = _run(["benchmarks/gpu_check.py", "--allow_cpu", f"--json={out}"], timeout=600, CUDA_VISIBLE_DEVICES="")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    stdout = proc.stdout
    assert "via pipelines.loop.train" in stdout and "2 logical CPUs" in stdout
    rows = ["1. input pipeline alone", "2. 1 device, float32, no XLA, fed from memory",
            "3. 1 device, mixed_bfloat16 + XLA, fed from memory",
            "4. 1 device, mixed_bfloat16 + XLA, fed by the input pipeline",
            "5. MirroredStrategy x 2, mixed_bfloat16, no XLA (logical CPUs), fed from memory (global batch 8)"]
    for row in rows:
        assert row in stdout, row
    assert "[MET ] MirroredStrategy: the 2 replicas end with identical weights" in stdout
    assert stdout.strip().splitlines()[-1].startswith("gpu_check: OK in ")
    data = json.loads(out.read_text())
    table = data["tables"][0]
    assert [r["name"] for r in table["rows"]][1:] == rows[1:] and table["unit"] == "images/s"
    assert all(r["median"] > 0 and r["n"] == 1 for r in table["rows"])
    assert data["info"]["settings"]["driver"] == "pipelines.loop.train"
    assert data["info"]["mirrored"]["replicas"] == 2 and data["info"]["mirrored"]["differ"] == []


def test_gpu_check_never_calls_fit():
    source = open(os.path.join(ROOT, "benchmarks", "gpu_check.py")).read()
    assert "loop.train(" in source and ".fit(" not in source and "train_on_batch" not in source
