"""kcv-style-transfer in a subprocess: tiny images, random weights, one-line errors, no partial output."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(args, tmp_path, **env):
    environ = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_HOME=str(tmp_path / "keras_home"), **env)
    return subprocess.run(
        [sys.executable, "-m", "pipelines.style_transfer", *args],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=300,
    )


def _errors(stderr):
    """Our own lines (TensorFlow's import chatter aside); never a traceback."""
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("kcv-style-transfer: error")]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name in ("content.png", "style.jpg"):
        path = tmp_path / name
        Image.fromarray(rng.integers(0, 256, (20, 30, 3)).astype("uint8")).save(path)
        paths.append(str(path))
    return paths


def test_tiny_run_writes_image_and_loss_curve(tmp_path, images):
    out = tmp_path / "result" / "out.png"
    proc = _run([f"--content={images[0]}", f"--style={images[1]}", f"--output={out}",
                 "--image_size=16,24", "--steps=3", "--weights=random", "--seed=1"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Image.open(out) as image:
        assert image.size == (24, 16) and image.mode == "RGB"  # PIL size is (width, height)
    with Image.open(tmp_path / "result" / "out_losses.png") as curve:
        assert curve.format == "PNG"
    assert sorted(os.listdir(tmp_path / "result")) == ["out.png", "out_losses.png"]  # no temporaries
    assert "random weights" in proc.stderr  # the explicit warning
    assert "3/3" in proc.stdout  # the progress bar reached the end
    assert "final weighted losses" in proc.stdout


def test_bad_flags_and_inputs_are_one_line_and_write_nothing(tmp_path, images):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a picture")
    out = tmp_path / "out.png"
    cases = [
        ([f"--style={images[1]}", f"--output={out}"], "--content is required"),
        ([f"--content={images[0]}", f"--style={images[1]}", f"--output={out}", "--image_size=abc"],
         "--image_size must be height,width"),
        ([f"--content={images[0]}", f"--style={images[1]}", f"--output={tmp_path / 'o.gif'}"],
         "--output must end in"),
        ([f"--content={broken}", f"--style={images[1]}", f"--output={out}"], "cannot read --content="),
        ([f"--content={images[0]}", f"--style={images[1]}", f"--output={out}",
          f"--weights={tmp_path / 'missing.h5'}"], f"vgg19 weights file not found: {tmp_path / 'missing.h5'}"),
        ([f"--content={images[0]}", f"--style={images[1]}", f"--output={out}", "--weights=imagenet21k"],
         "not imagenet, none or a path to a .h5 file (--weights=imagenet"),
    ]
    for args, expected in cases:
        proc = _run(args, tmp_path)
        assert proc.returncode == 1, (args, proc.stderr)
        errors = _errors(proc.stderr)
        assert len(errors) == 1 and expected in errors[0], (args, proc.stderr)
    assert not out.exists() and not (tmp_path / "out_losses.png").exists()


def test_missing_imagenet_weights_names_the_flags(tmp_path, images):
    out = tmp_path / "out.png"
    proc = _run([f"--content={images[0]}", f"--style={images[1]}", f"--output={out}", "--steps=1"],
                tmp_path)
    assert proc.returncode == 1
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and "--weights" in errors[0] and "--download" in errors[0]
    # names the file it looked for in the Keras cache (KERAS_HOME of this run)
    assert str(tmp_path / "keras_home" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5") in errors[0]
    assert not out.exists() and not (tmp_path / "out_losses.png").exists()


def test_help_lists_the_flags(tmp_path):
    proc = _run(["--help"], tmp_path)
    assert proc.returncode == 0
    for flag in ("--content", "--style", "--output", "--image_size", "--steps", "--weights", "--download"):
        assert flag in proc.stdout + proc.stderr
    # the one weights vocabulary (kcv.models.pretrained), random kept as the documented alias of none
    text = " ".join((proc.stdout + proc.stderr).split())
    assert "imagenet" in text and "none (random initialisation; random is the same)" in text
