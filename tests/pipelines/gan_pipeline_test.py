"""GAN experiments through kcv-train: the toy GAN matches the data's moments; DCGAN (large) trains and pushes."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(args, cwd, timeout=1800):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=ENV,
                          timeout=timeout)


def test_gan_gaussian_preset_learns_the_moments_and_exports_a_sampler(tmp_path):
    out = _run(["pipelines.train", "--experiment=gan_gaussian"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.load(open(glob.glob(str(tmp_path / "runs/gan_gaussian/Evaluator/evaluation/*/metrics.json"))[0]))
    report = metrics["report"]
    assert report["mean_rel_error"] <= 0.1 and report["cov_rel_error"] <= 0.1 and metrics["blessed"]
    # the data really is X A + b: its covariance is near the book's A^T A = [[1.01, 1.95], [1.95, 4.25]]
    np.testing.assert_allclose(report["real_cov"], [[1.01, 1.95], [1.95, 4.25]], rtol=0.12)
    assert glob.glob(str(tmp_path / "runs/gan_gaussian/Trainer/model_run/*/scatter/epoch_020.png"))
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tmp_path / "saved_models" / "gan_gaussian" / "1"))
    seeds = tf.constant([7, 8, 9, 10, 11], tf.int64)  # one sample per seed
    a, b = loaded.signatures["sample"](seed=seeds), loaded.signatures["sample"](seed=seeds)
    assert a["samples"].shape == (5, 2) and a["samples"].dtype == tf.float32
    np.testing.assert_array_equal(a["samples"].numpy(), b["samples"].numpy())


@pytest.mark.large
def test_dcgan_embedded_demo_trains_and_pushes_diverse_samples(tmp_path):
    out = _run(["pipelines.train", "--experiment=dcgan_pokemon"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.load(open(glob.glob(str(tmp_path / "runs/dcgan_pokemon/Evaluator/evaluation/*/metrics.json"))[0]))
    assert metrics["report"]["ok"] and metrics["report"]["duplicate_fraction"] <= 0.1
    log = open(glob.glob(str(tmp_path / "runs/dcgan_pokemon/Trainer/model_run/*/training_log.csv"))[0]).read()
    assert "nan" not in log.lower()
    assert len(glob.glob(str(tmp_path / "runs/dcgan_pokemon/Trainer/model_run/*/samples/epoch_*.png"))) == 20
