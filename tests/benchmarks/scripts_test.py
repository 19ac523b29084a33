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


def _cifar_like_tarball(path):
    """The CIFAR-10 tarball's layout (train/<class>/<nnnn>.jpg) with 20 training and 10 held-out
    (4000+) noise JPEGs per class: enough for gpu_check's part 6 on tiny sizes."""
    import io
    import tarfile

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for c in range(10):
            for i in [*range(20), *range(4000, 4010)]:
                buffer = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "JPEG")
                info = tarfile.TarInfo(f"train/class{c}/{i:04d}.jpg")
                info.size = buffer.tell()
                buffer.seek(0)
                tar.addfile(info, buffer)


@pytest.mark.large  # an end-to-end run (~2.5 minutes on 2 cores)
def test_gpu_check_runs_on_cpu_when_allowed(tmp_path):
    # The whole GPU check on tiny sizes, two logical CPUs standing in for two GPUs; part 6 on a
    # generated tarball in the CIFAR-10 layout (one epoch of each recipe through kcv-train).
    out = tmp_path / "out.json"
    data = tmp_path / "cifar.tar.gz"
    _cifar_like_tarball(data)
    proc = _run(["benchmarks/gpu_check.py", "--allow_cpu", f"--json={out}", f"--data={data}",
                 f"--work_dir={tmp_path / 'tta'}"], timeout=900, CUDA_VISIBLE_DEVICES="")
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
    assert "time to 94% on real CIFAR-10 (200 training images, 100 held out)" in stdout
    assert "[info] 6. cifar10_fast:1: 94% on the pipeline eval split: not reached" in stdout
    tta = data["info"]["time_to_accuracy"]
    assert [r["recipe"] for r in tta["rows"]] == ["cifar10_fast:1", "resnet18_cifar10:1"]
    assert all(r["wall_s"] > 0 and 0 <= r["held_out_accuracy"] <= 1 and r["seconds_to_target"] is None
               and set(r["trainer_s"]) == {"input", "step", "validation", "other"} for r in tta["rows"])


def test_gpu_check_part_6_says_when_the_data_is_absent(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    import gpu_check

    args = gpu_check.parse_args(["--data", str(tmp_path / "absent.tar.gz")])
    info = {}
    table, notes, failures = gpu_check.time_to_accuracy_part(args, True, str(tmp_path), info)
    assert table is None and failures == [] and info == {}
    assert notes == [f"[info] 6. time to accuracy: skipped, no CIFAR-10 tarball ({tmp_path / 'absent.tar.gz'})"]
    assert "part 6 (time to accuracy) skipped" in capsys.readouterr().out


def test_gpu_check_never_calls_fit():
    source = open(os.path.join(ROOT, "benchmarks", "gpu_check.py")).read()
    assert "loop.train(" in source and ".fit(" not in source and "train_on_batch" not in source
