"""The GAN and BN-LeNet presets against the book, the GAN tasks' learning rates, the points GAN's score."""
import math

import numpy as np
import pytest

from pipelines.config import build_config
from pipelines.experiments import EXPERIMENTS
from pipelines.tasks._gan import gan_learning_rates
from pipelines.tasks.gan_points import moments_score


def _differences(a, b):
    """Dotted settings where two built configs differ (experiment name aside)."""
    da, db = build_config(a).to_dict(), build_config(b).to_dict()
    out = {}

    def walk(x, y, prefix):
        for key in sorted(set(x) | set(y)):
            if isinstance(x.get(key), dict) and isinstance(y.get(key), dict) and key != "kwargs":
                walk(x[key], y[key], f"{prefix}{key}.")
            elif x.get(key) != y.get(key):
                out[f"{prefix}{key}"] = (x.get(key), y.get(key))
    walk(da, db, "")
    out.pop("experiment", None)
    out.pop("book", None)
    out.pop("paths.pipeline_root", None)
    out.pop("paths.serving_model_dir", None)
    return out


def test_gan_gaussian_has_no_seed_pin_and_blesses_at_5_percent():
    assert "runtime" not in EXPERIMENTS["gan_gaussian"].preset
    cfg = build_config("gan_gaussian")
    assert cfg.runtime.seed == 0 and cfg.evaluation.min_accuracy == 0.95
    assert cfg.model.kwargs == {"r1_penalty": 3.0, "discriminator_units": [16, 8]}
    t = cfg.training
    assert (t.epochs, t.batch_size, t.lr, t.d_lr, t.adam_beta_1) == (160, 32, 0.002, 0.05, 0.5)


def test_gan_gaussian_book_is_the_books_recipe():
    assert "runtime" not in EXPERIMENTS["gan_gaussian_book"].preset
    cfg = build_config("gan_gaussian_book")
    t = cfg.training
    assert (t.epochs, t.batch_size, t.lr, t.d_lr, t.adam_beta_1, t.lr_schedule) == (20, 8, 0.005, 0.05, 0.9, "constant")
    assert cfg.model.kwargs == {} and cfg.data.embedded_examples == 1000
    assert cfg.evaluation.min_accuracy == pytest.approx(0.9)  # the old 10% bar


def test_dcgan_presets_differ_only_in_the_discriminators_input_bn():
    assert _differences("dcgan_pokemon", "dcgan_pokemon_book") == {
        "model.kwargs": ({"discriminator_input_bn": False}, {"discriminator_input_bn": True})}


def test_lenet_presets_differ_only_in_the_batch_norm_layer():
    assert _differences("lenet_bn_fashion_mnist", "lenet_keras_bn_fashion_mnist") == {
        "model.kwargs": ({"batch_norm": "scratch"}, {"batch_norm": "keras"})}
    t = build_config("lenet_keras_bn_fashion_mnist").training
    assert (t.epochs, t.batch_size, t.lr, t.optimizer) == (10, 128, 0.1, "sgd")  # the book's pt recipe


def _at(schedule, step):
    import tensorflow as tf

    return float(schedule(tf.constant(step, tf.int64)))


def test_gan_learning_rates_follow_the_schedule_with_ds_rate_scaled():
    book = build_config("gan_gaussian_book").training
    assert gan_learning_rates(book, 112) == (0.05, 0.005)  # constant: plain floats, as before
    d, g = gan_learning_rates(build_config("gan_gaussian").training, 28)
    # cosine over 160 epochs of 28 steps from 0.002 (G) / 0.05 (D) down to 6e-5 / 1.5e-3: D stays 25x G
    for step in (0, 28 * 40, 28 * 80, 28 * 159, 28 * 200):
        assert _at(d, step) == pytest.approx(25 * _at(g, step), rel=1e-5)
    assert _at(g, 0) == pytest.approx(0.002) and _at(g, 28 * 200) == pytest.approx(6e-5)
    assert _at(g, 28 * 80) == pytest.approx(6e-5 + (0.002 - 6e-5) / 2, rel=1e-5)
    same = build_config("gan_gaussian", {"training": {"d_lr": 0.0, "lr_schedule": "step", "lr_period": 2,
                                                      "lr_decay": 0.5}}).training
    d, g = gan_learning_rates(same, 10)
    assert [_at(d, s) for s in (0, 19, 20, 40)] == pytest.approx([0.002, 0.002, 0.001, 0.0005])
    assert [_at(g, s) for s in (0, 20, 40)] == pytest.approx([0.002, 0.001, 0.0005])
    ms = build_config("gan_gaussian", {"training": {"lr_schedule": "multistep:milestones=2/4,gamma=0.1"}}).training
    d, _ = gan_learning_rates(ms, 10)
    assert [_at(d, s) for s in (0, 20, 40)] == pytest.approx([0.05, 0.005, 0.0005])


def test_moments_score_is_one_minus_the_larger_relative_error():
    assert moments_score({"finite": True, "mean_rel_error": 0.01, "cov_rel_error": 0.04}) == pytest.approx(0.96)
    assert moments_score({"finite": True, "mean_rel_error": 0.3, "cov_rel_error": 0.04}) == pytest.approx(0.7)
    assert math.isnan(moments_score({"finite": False, "mean_rel_error": 0.0, "cov_rel_error": 0.0}))


def test_points_evaluator_applies_the_configured_bar(tmp_path):
    # A linear generator exporting exactly the train split's mean and covariance: the only error
    # left is that of the Evaluator's 20,000 draws (~1%), and `ok` follows 1 - --min_accuracy.
    import keras

    from kcv.data.input import read_points
    from kcv.serving.generator import export_generator
    from pipelines.components import example_gen
    from pipelines.tasks import get_task
    from pipelines.tasks.base import split_dir

    task = get_task("gan_points")
    cfg = build_config("gan_gaussian", {"paths": {"pipeline_root": str(tmp_path / "runs")}})
    examples = example_gen.run(cfg, task, {}, "r").outputs["examples"]
    train = read_points(split_dir(examples, "train"))
    kernel = np.linalg.cholesky(np.cov(train, rowvar=False)).T  # z @ kernel has covariance kernel^T kernel
    z = keras.Input((2,))
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(kernel),
                             bias_initializer=keras.initializers.Constant(train.mean(0)), dtype="float32")(z)
    saved = export_generator(keras.Model(z, out), str(tmp_path / "g"), latent_dim=2, output="points")
    metrics = task.evaluate(saved, cfg, examples, [])
    report = metrics["report"]
    assert metrics["primary_metric"] == "moments_score" and report["rtol"] == pytest.approx(0.05)
    assert metrics["moments_score"] > 0.97 and report["ok"] and metrics["checks_passed"] == 1.0
    np.testing.assert_allclose(report["real_cov"], np.cov(train, rowvar=False), rtol=1e-6)  # the train split
    strict = cfg.replace(**{"evaluation.min_accuracy": 0.9999})
    again = task.evaluate(saved, strict, examples, [])
    assert not again["report"]["ok"] and again["checks_passed"] == 0.0
    assert again["moments_score"] == metrics["moments_score"]  # the same draws: the score is deterministic
