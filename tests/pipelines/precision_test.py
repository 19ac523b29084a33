"""--mixed_precision (float32 outputs and signatures), --jit_compile (resolved, logged, stored),
--deterministic (identical weights) and a NaN loss (clear error, nothing exported) in the Trainer."""
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
from pipelines.components import trainer
from pipelines.config import build_config
from pipelines.runner import run_pipeline
from pipelines.tasks import get_task


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(cfg, the examples and transform artifacts) of simple_cnn on 100 embedded images; read-only."""
    root = str(tmp_path_factory.mktemp("precision"))
    cfg = build_config("resnet18_cifar10", {
        "paths": {"pipeline_root": os.path.join(root, "runs")}, "data": {"embedded_examples": 100, "num_shards": 1},
        "training": {"epochs": 1, "batch_size": 10, "lr": 0.05}, "model": {"name": "simple_cnn"}})
    cfg = cfg.replace(**{"model.kwargs": {"width": 4}, "evaluation.min_accuracy": 0.0})
    record = run_pipeline(cfg.replace(components=["ExampleGen", "Transform"]))
    return cfg, record.artifacts


def _train(prepared, run_id, **dotted):
    """The Trainer alone on the prepared artifacts; returns the model folder."""
    cfg, inputs = prepared
    cfg = cfg.replace(**dotted)
    return trainer.run(cfg, get_task(cfg.task), inputs, run_id).outputs["model"]


def _summary(model_dir):
    return json.load(open(os.path.join(model_dir, "training_summary.json")))


@pytest.mark.parametrize("precision, policy, compute", [("float16", "mixed_float16", "float16"),
                                                        ("bfloat16", "mixed_bfloat16", "bfloat16")])
def test_mixed_precision_keeps_outputs_and_signatures_float32(prepared, precision, policy, compute, caplog):
    with caplog.at_level(logging.INFO, logger="absl"):
        out = _train(prepared, f"mp-{precision}", **{"runtime.mixed_precision": precision,
                                                      "runtime.jit_compile": "false"})
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


def test_auto_precision_is_resolved_for_this_machine_and_recorded(prepared):
    from pipelines.distribute import resolve_policy

    summary = _summary(_train(prepared, "mp-auto", **{"runtime.mixed_precision": "auto"}))
    assert summary["mixed_precision"] == "auto" and summary["policy"] == resolve_policy("auto")
    assert summary["policy"] in ("float32", "mixed_bfloat16", "mixed_float16")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_the_backup_fingerprint_of_auto_follows_the_resolved_policy(prepared, monkeypatch):
    from pipelines import distribute

    cfg, inputs = prepared
    auto = cfg.replace(**{"runtime.mixed_precision": "auto"})

    def fingerprint(c):
        return trainer.data_fingerprint(c, inputs["examples"], {}, [], 9)

    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: True)
    with_bf16 = fingerprint(auto)
    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: False)
    if not tf.config.list_logical_devices("GPU"):  # a float32 machine must not resume a bf16 backup
        assert fingerprint(auto) != with_bf16
    assert fingerprint(cfg) == fingerprint(cfg.replace(**{"runtime.jit_compile": "true"}))  # not fingerprinted


def test_deterministic_runs_give_identical_weights(prepared, caplog):
    settings = {"runtime.deterministic": True, "runtime.seed": 3}
    with caplog.at_level(logging.INFO, logger="absl"):
        first = _train(prepared, "det-a", **settings)
    # auto resolves to no XLA on a CPU, logged with the flag and stored in the summary
    assert "jit_compile=False (--jit_compile=auto)" in caplog.text and "op determinism True" in caplog.text
    second = _train(prepared, "det-b", **settings)
    a, b = _summary(first), _summary(second)
    assert a["jit_compile"] is False and a["jit_compile_flag"] == "auto" and a["deterministic"] is True
    assert a["weights_sha256"] == b["weights_sha256"] and a["history"] == b["history"]
    wa = keras.saving.load_model(os.path.join(first, "model.keras")).get_weights()
    wb = keras.saving.load_model(os.path.join(second, "model.keras")).get_weights()
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)
    # and another seed trains other weights (the comparison above can fail)
    third = _train(prepared, "det-c", **{**settings, "runtime.seed": 4})
    assert _summary(third)["weights_sha256"] != a["weights_sha256"]


def test_nan_loss_stops_with_a_clear_message_and_exports_nothing(prepared):
    cfg, _ = prepared
    with pytest.raises(PipelineError, match=r"^training loss became NaN/inf at epoch 1, step \d+ \(loss\); "
                                            r"nothing exported \(try a smaller --lr\)$"):
        _train(prepared, "nan", **{"training.lr": 1e10, "training.momentum": 0.0, "training.backup_steps": 1})
    models = os.path.join(cfg.paths.pipeline_root, "Trainer", "model")
    assert not [d for d in (os.listdir(models) if os.path.isdir(models) else []) if "nan" in d]  # nor .tmp-nan
    # the backup never holds the diverged state: what it holds (if anything) is finite
    model_run = os.path.join(cfg.paths.pipeline_root, "Trainer", "model_run")
    for folder in [os.path.join(model_run, d) for d in os.listdir(model_run) if d.startswith("backup")]:
        pointer = json.load(open(os.path.join(folder, "backup.json")))
        reader = tf.train.load_checkpoint(os.path.join(folder, pointer["checkpoint"], "state"))
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype.is_floating:
                assert np.isfinite(reader.get_tensor(name)).all(), name


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
