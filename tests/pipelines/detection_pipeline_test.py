"""tiny_ssd_bananas through kcv-train and kcv-predict (small), and the book's recipe (large)."""
import csv
import glob
import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(args, cwd, timeout=2400):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=ENV,
                          timeout=timeout)


@pytest.mark.large  # an end-to-end run (~1 minute or more on 2 cores)
def test_small_detector_run_pushes_and_predicts_boxes(tmp_path):
    out = _run(["pipelines.train", "--experiment=tiny_ssd_bananas", "--embedded_examples=48", "--epochs=1",
                "--batch_size=16", "--min_accuracy=0"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    counts = json.load(open(glob.glob(str(tmp_path / "runs/tiny_ssd_bananas/ExampleGen/examples/*/counts.json"))[0]))
    assert counts["train"] == 48 and counts["eval"] == 20 and counts["max_objects"] == 1
    metrics = json.load(open(glob.glob(str(tmp_path / "runs/tiny_ssd_bananas/Evaluator/evaluation/*/metrics.json"))[0]))
    assert metrics["primary_metric"] == "map_50" and metrics["examples"] == 20
    images = glob.glob(str(tmp_path / "runs/tiny_ssd_bananas/embedded_data/*/bananas_val/images"))[0]
    out = _run(["pipelines.predict", "--model_dir=saved_models/tiny_ssd_bananas", f"--input_dir={images}",
                "--output=detections.csv", "--plot=detections.png"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.reader(open(tmp_path / "detections.csv")))
    assert rows[0] == ["id", "class", "score", "xmin", "ymin", "xmax", "ymax"] and len(rows) > 1
    # the CSV is exactly what the pushed detector answers a TF Serving client, image by image
    import tensorflow as tf

    serve = tf.saved_model.load(str(tmp_path / "saved_models/tiny_ssd_bananas/1")).signatures["serving_default"]
    expected = []
    for name in sorted(os.listdir(images), key=lambda f: int(os.path.splitext(f)[0])):
        out = serve(image_bytes=tf.constant([open(os.path.join(images, name), "rb").read()]))
        n = int(out["num_detections"][0])
        expected += [(os.path.splitext(name)[0], b) for b in out["boxes"][0, :n].numpy()]
    assert sorted(r[0] for r in rows[1:]) == sorted(stem for stem, _ in expected)
    got = {(r[0], *r[3:]) for r in rows[1:]}
    assert got == {(stem, *(f"{v:.1f}" for v in box)) for stem, box in expected}
    for row in rows[1:]:
        x1, y1, x2, y2 = map(float, row[3:])
        assert 0 <= x1 <= x2 <= 256 and 0 <= y1 <= y2 <= 256  # pixel boxes of the 256x256 originals
    assert (tmp_path / "detections.png").stat().st_size > 1000


@pytest.mark.large
def test_book_recipe_reaches_map50_on_held_out_scenes(tmp_path):
    out = _run(["pipelines.train", "--experiment=tiny_ssd_bananas"], tmp_path, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.load(open(glob.glob(str(tmp_path / "runs/tiny_ssd_bananas/Evaluator/evaluation/*/metrics.json"))[0]))
    assert metrics["map_50"] >= 0.8
