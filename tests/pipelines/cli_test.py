"""Every binary's command-line mistakes are one line `kcv-<name>: error: ...`, exit 1, nothing written;
--help opens with what the binary does and names it, not a path, without loading TensorFlow."""
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
BINARIES = {"train": "kcv-train", "predict": "kcv-predict", "data_demo": "kcv-data", "anchors": "kcv-anchors",
            "optim_demo": "kcv-optim", "style_transfer": "kcv-style-transfer"}
MISSING = "/nonexistent-kcv-cli-test"

# (module, args, what the error line says); run in an empty folder, relative outputs land there.
MISTAKES = [
    ("train", ["--experiment=resnet18_cifar10", "--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    ("train", ["--experiment=resnet18_cifar10", "--epochs=0"], "--epochs=0"),
    ("train", ["--experiment=resnet18_cifar10", "--strategy=quantum"], "--strategy"),
    ("train", [], "--experiment is required: one of "),
    ("train", ["--experiment=resnet18_cifar10", "stray"], "unexpected arguments: stray"),
    ("train", ["--experiment=nope"], "--experiment=nope: unknown experiment 'nope'; use one of "),
    ("train", ["--experiment=resnet18_cifar10", "--lr_schedule=warp"], "'warp': unknown schedule; use one of "),
    ("train", ["--experiment=resnet18_cifar10", f"--data_dir={MISSING}"], f"--data_dir={MISSING}: no such folder"),
    ("predict", ["--no_such_flag=1"], "Unknown command line flag"),
    ("predict", ["--batch_size=0"], "--batch_size=0"),
    ("predict", ["--input_dir=in", "--output=out.csv"], "--model_dir is required: "),
    ("predict", [f"--model_dir={MISSING}", "--input_dir=in", "--output=out.csv", "stray"], "unexpected arguments"),
    ("predict", [f"--model_dir={MISSING}", "--input_dir=in", "--output=out.csv"], f"--model_dir {MISSING} does not"),
    ("data_demo", ["--no_such_flag=1"], "Unknown command line flag"),
    ("data_demo", ["--examples=0"], "--examples=0"),
    ("data_demo", [], "--source is required"),
    ("data_demo", ["--source=class_folders", "stray"], "unexpected arguments: stray"),
    ("data_demo", ["--source=class_folders", f"--data_dir={MISSING}"], f"--data_dir={MISSING}: no such folder"),
    ("anchors", ["--no_such_flag=1"], "Unknown command line flag"),
    ("anchors", ["--image=x.png", "--sizes=abc"], "--sizes must be a comma-separated list of positive numbers"),
    ("anchors", [], "--image is required"),
    ("anchors", ["--image=x.png", "stray"], "unexpected arguments: stray"),
    ("anchors", [f"--image={MISSING}.png"], f"cannot read --image={MISSING}.png"),
    ("optim_demo", ["--no_such_flag=1"], "Unknown command line flag"),
    ("optim_demo", ["--demo=bogus", "--output=o"], "--demo=bogus is not a demo; valid: gd1d|"),
    ("optim_demo", ["--output=o"], "--demo is required"),
    ("optim_demo", ["--demo=gd1d", "--output=o", "stray"], "unexpected arguments: stray"),
    ("optim_demo", ["--demo=gd1d", "--output=/dev/null/o"], "cannot create --output=/dev/null/o"),  # parent is a file
    ("style_transfer", ["--no_such_flag=1"], "Unknown command line flag"),
    ("style_transfer", [f"--content={MISSING}.png", f"--style={MISSING}.png", "--output=o.png", "--image_size=abc"],
     "--image_size must be height,width"),
    ("style_transfer", ["--style=s.png", "--output=o.png"], "--content is required: "),
    ("style_transfer", ["--content=c.png", "--style=s.png", "--output=o.png", "stray"], "unexpected arguments"),
    ("style_transfer", [f"--content={MISSING}.png", "--style=s.png", "--output=o.png"],
     f"cannot read --content={MISSING}.png"),
]


@pytest.mark.parametrize("module, args, message", MISTAKES, ids=[f"{m}:{' '.join(a)}" for m, a, _ in MISTAKES])
def test_mistake_is_one_line_exit_1_nothing_written(tmp_path, module, args, message):
    proc = subprocess.run([sys.executable, "-m", f"pipelines.{module}", *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    prefix = f"{BINARIES[module]}: error: "
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix) and message in lines[0], proc.stderr
    assert os.listdir(tmp_path) == []  # no output file, no artifact folder


@pytest.mark.parametrize("module", sorted(BINARIES))
def test_help_describes_and_names_the_binary_without_tensorflow(module):
    # As the console script runs it: sys.argv[0] is the venv's wrapper script.
    name = BINARIES[module]
    code = (f"import sys; sys.argv = ['/some/venv/bin/{name}', '--help']\n"
            f"from pipelines import {module}\n"
            f"try:\n    {module}.run()\nexcept SystemExit as e:\n"
            f"    print('tensorflow' in sys.modules, e.code, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.stderr.split() == ["False", "0"], proc.stderr
    out = proc.stdout
    assert out.startswith(f"{name}: "), out[:200]
    assert out.count(f"\n  {name} ") >= 2 or out.count(f"\n  {name} ...") >= 1  # example commands
    assert f"USAGE: {name} [flags]" in out and f"\n{name}:\n" in out  # the usage line and the flags' heading
    assert "/some/venv" not in out and "Try --helpfull" in out
    assert out.index("USAGE:") < out.index("  --")  # description and examples before the flags


@pytest.mark.parametrize("module, args", [
    ("train", ["--experiment=lenet_bn_fashion_mnist", "--data_dir={empty}", "--download"]),
    ("data_demo", ["--source=tfds:fashion_mnist", "--data_dir={empty}", "--download"]),
])
def test_download_without_network_is_one_line_within_30s(tmp_path, module, args):
    # Offline as the test sees it: every proxy is 127.0.0.1:9, where nothing listens; no traffic leaves.
    proxy = "http://127.0.0.1:9"
    env = {k: v for k, v in ENV.items() if k.lower() not in ("no_proxy", "all_proxy")}
    env.update(https_proxy=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, HTTP_PROXY=proxy)
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", f"pipelines.{module}", *(a.format(empty=empty) for a in args)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert time.time() - start < 30
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if "error:" in line]  # TensorFlow logs aside
    assert line.startswith(f"{BINARIES[module]}: error: ")
    assert f"'fashion_mnist' is not prepared in {empty} and downloading it failed (no network: " in line
    assert os.listdir(empty) == []
