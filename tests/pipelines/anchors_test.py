"""kcv-anchors on small generated images (no shared data)."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from PIL import Image

from pipelines import anchors as binary


@pytest.fixture
def image_path(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "scene.png"
    Image.fromarray(rng.integers(0, 255, (56, 72, 3), dtype=np.uint8)).save(path)  # H 56, W 72
    return str(path)


def run_in_process(*args):
    fv = flags.FlagValues()
    binary.define_flags(fv)
    fv(["kcv-anchors", *args])
    binary.execute(fv)


def test_anchors_figure_and_printed_coordinates(image_path, tmp_path, capsys):
    out = tmp_path / "anchors.png"
    run_in_process(f"--image={image_path}", "--sizes=0.5,0.25", "--ratios=1,2", "--pixel=20,30", f"--output={out}")
    printed = capsys.readouterr().out.splitlines()
    # pixel x=20, y=30: centre (20.5/72, 30.5/56) = (0.2847, 0.5446); s=0.5, r=1:
    # w = 0.5 * 56/72 = 0.3889, h = 0.5 -> [0.0903, 0.2946, 0.4792, 0.7946]
    assert printed[0] == "s=0.5, r=1: [0.0903, 0.2946, 0.4792, 0.7946]"
    assert [line.split(":")[0] for line in printed[:3]] == ["s=0.5, r=1", "s=0.25, r=1", "s=0.5, r=2"]
    assert printed[-1] == f"wrote {out}"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 100
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


@pytest.mark.parametrize("demo", ["labels", "nms"])
def test_demos(demo, image_path, tmp_path, capsys):
    out = tmp_path / f"{demo}.png"
    run_in_process(f"--image={image_path}", f"--demo={demo}", f"--output={out}")
    text = capsys.readouterr().out
    if demo == "labels":
        assert "class labels: [0, 1, 2, 0, 2]" in text  # the book's labels[2]
    else:
        assert "[ 0.    0.9   0.1   0.08  0.52  0.92]" in text  # the book's first detection row
    with Image.open(out) as img:
        width, height = img.size
    # The 72x56 image is 1.29:1; nms puts before/after panels side by side (about 2.3:1).
    assert (width / height > 2.0) == (demo == "nms")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes=0.5,abc"], "--sizes must be a comma-separated list of positive numbers, got '0.5,abc'"),
        (["--ratios=1,0"], "--ratios must be a comma-separated list of positive numbers"),
        (["--pixel=72,10"], "--pixel=72,10 is outside the 72x56 image (x in [0, 72), y in [0, 56))"),
        (["--pixel=3"], "--pixel must be X,Y with two integers, got '3'"),
        (["--demo=boxes"], "--demo must be one of labels, nms"),
        (["--output=out.xyz"], "unsupported format '.xyz'"),
    ],
)
def test_bad_flags(args, message, image_path, tmp_path):
    with pytest.raises(binary.InputError, match=re.escape(message)):
        run_in_process(f"--image={image_path}", *[a.replace("out.xyz", str(tmp_path / "out.xyz")) for a in args])


def test_unreadable_and_missing_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(binary.InputError, match="cannot read --image=.*bad.jpg: not a readable image"):
        run_in_process(f"--image={bad}", f"--output={tmp_path / 'o.png'}")
    with pytest.raises(binary.InputError, match="No such file"):
        run_in_process(f"--image={tmp_path / 'none.png'}", f"--output={tmp_path / 'o.png'}")
    with pytest.raises(binary.InputError, match="--image is required"):
        run_in_process(f"--output={tmp_path / 'o.png'}")


def test_command_line_errors_are_one_line_and_leave_no_file(image_path, tmp_path):
    """Through absl's app.run, as the console script runs it; fails before TensorFlow loads."""
    out = tmp_path / "anchors.png"
    for args in ([f"--image={image_path}", "--pixel=1000,1"], ["--no_such_flag=1"], [f"--image={image_path}", "stray"]):
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.anchors", *args, f"--output={out}"],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 1
        assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("kcv-anchors: error: "), proc.stderr
        assert "Traceback" not in proc.stderr and not out.exists()


def test_help_is_fast_and_does_not_load_tensorflow():
    code = "import sys; from pipelines import anchors; anchors.define_flags(); print('tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False"
