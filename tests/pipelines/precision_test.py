"""--mixed_precision (float32 outputs and signatures), --jit_compile (resolved, logged, stored),
--deterministic (identical weights) and a NaN loss (clear error, nothing exported) in the Trainer."""
import dataclasses
import json
import logging
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.artifacts import PipelineError
from pipelines.components import example_gen, trainer, transform
from pipelines.config import build_config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("precision"))
    cfg = build_config("resnet18_cifar10", pipeline_root=os.path.join(root, "runs"), embedded_examples=100,
                       epochs=1, batch_size=10, num_shards=1, lr=0.05)
    cfg = dataclasses.replace(cfg, model="simple_cnn", model_kwargs={"width": 4}, min_accuracy=0.0)
    example_gen.run(cfg, "r0")
    transform.run(cfg, "r0")
    return cfg


def _summary(model_dir):
    return json.load(open(os.path.join(model_dir, "training_summary.json")))


@pytest.mark.parametrize("precision, policy, compute", [("float16", "mixed_float16", "float16"),
                                                        ("bfloat16", "mixed_bfloat16", "bfloat16")])
def test_mixed_precision_keeps_outputs_and_signatures_float32(prepared, precision, policy, compute, caplog):
    cfg = dataclasses.replace(prepared, mixed_precision=precision, jit_compile="false")
    with caplog.at_level(logging.INFO, logger="absl"):
        out = trainer.run(cfg, f"mp-{precision}")
    assert f"jit_compile=False (--jit_compile=false); policy {policy}" in caplog.text
    summary = _summary(out)
    assert summary["policy"] == policy and summary["jit_compile"] is False and summary["jit_compile_flag"] == "false"
    assert all(np.isfinite(summary["history"]["loss"]))
    assert keras.mixed_precision.global_policy().name == "float32"  # the Trainer put the policy back
    # the saved model computes its convolutions in the low precision, its logits in float32
    model = keras.saving.load_model(os.path.join(out, "model.keras"), compile=False)
    assert model.get_layer("simple_cnn").get_layer("conv1").compute_dtype == compute
    assert model.output.dtype == "float32"
    # both exported signatures answer float32 probabilities, finite, rows summing to 1
    loaded = tf.saved_model.load(os.path.join(out, "Format-Serving"))
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)), tf.uint8)
    by_tensor = loaded.signatures["serving_images"](images=images)["probabilities"]
    png = tf.stack([tf.io.encode_png(image) for image in images])
    by_bytes = loaded.signatures["serving_default"](image_bytes=png)["probabilities"]
    for probs in (by_tensor, by_bytes):
        assert probs.dtype == tf.float32 and probs.shape == (3, 10)
        assert np.isfinite(probs.numpy()).all()
        np.testing.assert_allclose(probs.numpy().sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(by_bytes.numpy(), by_tensor.numpy(), atol=1e-6)  # PNG is lossless


def test_deterministic_runs_give_identical_weights(prepared, caplog):
    cfg = dataclasses.replace(prepared, deterministic=True, seed=3)
    with caplog.at_level(logging.INFO, logger="absl"):
        first = trainer.run(cfg, "det-a")
    # auto resolves to no XLA on a CPU, logged with the flag and stored in the summary
    assert "jit_compile=False (--jit_compile=auto)" in caplog.text and "op determinism True" in caplog.text
    second = trainer.run(cfg, "det-b")
    a, b = _summary(first), _summary(second)
    assert a["jit_compile"] is False and a["jit_compile_flag"] == "auto" and a["deterministic"] is True
    assert a["weights_sha256"] == b["weights_sha256"] and a["history"] == b["history"]
    wa = keras.saving.load_model(os.path.join(first, "model.keras")).get_weights()
    wb = keras.saving.load_model(os.path.join(second, "model.keras")).get_weights()
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)
    # and another seed trains other weights (the comparison above can fail)
    third = trainer.run(dataclasses.replace(cfg, seed=4), "det-c")
    assert _summary(third)["weights_sha256"] != a["weights_sha256"]


def test_nan_loss_stops_with_a_clear_message_and_exports_nothing(prepared):
    cfg = dataclasses.replace(prepared, lr=1e10, momentum=0.0, backup_steps=1)
    with pytest.raises(PipelineError, match=r"^training loss became NaN/inf at epoch 1, step \d+ \(loss\); "
                                            r"nothing exported \(try a smaller --lr\)$"):
        trainer.run(cfg, "nan")
    models = os.path.join(cfg.pipeline_root, "Trainer", "model")
    assert not [d for d in (os.listdir(models) if os.path.isdir(models) else []) if "nan" in d]  # nor .tmp-nan
    # the backup never holds the diverged state: what it holds is finite
    state = os.path.join(cfg.pipeline_root, "Trainer", "model_run", "backup", "state.npz")
    if os.path.exists(state):
        with np.load(state) as data:
            assert all(np.isfinite(data[k]).all() for k in data.files if k != "__meta__")


@pytest.mark.large
def test_kcv_train_with_a_diverging_lr_fails_in_one_line_and_pushes_nothing(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pipelines.train", "--experiment=resnet18_cifar10",
                          "--model=simple_cnn", "--embedded_examples=100", "--epochs=1", "--batch_size=10",
                          "--lr=1e10", "--momentum=0", f"--pipeline_root={tmp_path}/runs",
                          f"--serving_model_dir={tmp_path}/saved_models/m"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("kcv-train: error: Trainer: training loss became NaN/inf at epoch 1, step ")
    assert last.endswith("nothing exported (try a smaller --lr)")
    assert not os.path.exists(tmp_path / "saved_models") and not os.path.exists(tmp_path / "runs" / "Trainer" / "model")
