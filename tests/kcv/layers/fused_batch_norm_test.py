"""kcv.layers.FusedBatchNorm: torch BatchNorm2d numbers, the saved name, mixed precision."""
import keras
import numpy as np
import pytest

from kcv.layers import FusedBatchNorm


def test_fused_batch_norm_is_torch_batchnorm():
    # Training: normalise with the biased batch variance; running stats move 10% towards the batch
    # mean and the UNBIASED variance (torch.nn.BatchNorm2d). Inference uses the running stats.
    x = np.random.default_rng(2).normal(3.0, 2.0, (2, 3, 3, 4)).astype("float32")
    layer = FusedBatchNorm()
    y = layer(x, training=True).numpy()
    flat = x.reshape(-1, 4)
    np.testing.assert_allclose(y.reshape(-1, 4), (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5), atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)
    inference = layer(x, training=False).numpy().reshape(-1, 4)
    expected = (flat - layer.moving_mean.numpy()) / np.sqrt(layer.moving_variance.numpy() + 1e-5)
    np.testing.assert_allclose(inference, expected, atol=1e-5)
    clone = FusedBatchNorm.from_config(layer.get_config())
    assert (clone.momentum, clone.epsilon) == (0.1, 1e-5)


def test_weights_are_keras_batchnormalization_order():
    layer = FusedBatchNorm(name="bn")
    layer.build((None, 2, 2, 3))
    assert [w.path for w in layer.weights] == ["bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"]
    assert [w.path for w in layer.trainable_weights] == ["bn/gamma", "bn/beta"]


def test_files_saved_when_it_lived_in_tiny_ssd_still_load():
    # A layer saved before the move is recorded as module kcv.models.tiny_ssd, registered name
    # kcv>FusedBatchNorm; the registered name is what Keras looks up, so it still resolves.
    assert keras.saving.get_registered_name(FusedBatchNorm) == "kcv>FusedBatchNorm"
    old = {"module": "kcv.models.tiny_ssd", "class_name": "FusedBatchNorm", "registered_name": "kcv>FusedBatchNorm",
           "config": {"name": "blk0_down1_bn1", "trainable": True, "dtype": "float32", "momentum": 0.2,
                      "epsilon": 1e-3}}
    layer = keras.saving.deserialize_keras_object(old)
    assert type(layer) is FusedBatchNorm and (layer.momentum, layer.epsilon) == (0.2, 1e-3)


def test_keras_file_round_trip_keeps_moving_statistics(tmp_path):
    model = keras.Sequential([keras.Input((3, 3, 2)), FusedBatchNorm(name="bn")])
    x = np.random.default_rng(1).normal(2.0, 1.0, (4, 3, 3, 2)).astype("float32")
    model(x, training=True)
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], FusedBatchNorm)
    np.testing.assert_allclose(loaded.layers[0].moving_mean.numpy(), model.layers[0].moving_mean.numpy())
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_mixed_precision_activations_with_float32_statistics():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = FusedBatchNorm()
        x = np.random.default_rng(3).normal(5.0, 2.0, (2, 4, 4, 3)).astype("float32")
        y = layer(x, training=True)
        assert y.dtype == "bfloat16"
        assert layer.moving_mean.dtype == "float32" and layer.gamma.dtype == "float32"
        # 0.1 * batch mean, from float32 statistics of the bfloat16 batch (mean ~5: bf16 step 1/32)
        np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.reshape(-1, 3).mean(0), rtol=2e-2)
        assert np.isfinite(layer(x, training=False).numpy().astype("float32")).all()
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_initializers_are_used_and_survive_the_config():
    init = keras.initializers.RandomNormal(0.0, 0.02, seed=3)
    layer = FusedBatchNorm(gamma_initializer=init, beta_initializer="ones")
    layer.build((None, 2, 2, 64))
    clone = FusedBatchNorm.from_config(layer.get_config())
    clone.build((None, 2, 2, 64))
    np.testing.assert_array_equal(clone.gamma.numpy(), layer.gamma.numpy())
    assert abs(float(np.std(layer.gamma.numpy())) - 0.02) < 0.006 and np.all(clone.beta.numpy() == 1.0)


def test_repeated_updates_leave_the_state_of_that_many_calls_and_are_undone():
    from kcv.layers.fused_batch_norm import repeated_updates, updates_per_call

    x = np.random.default_rng(3).normal(1.0, 2.0, (4, 2, 2, 3)).astype("float32")
    twice, once = FusedBatchNorm(name="a"), FusedBatchNorm(name="b")
    model = keras.Sequential([keras.Input((2, 2, 3)), once])
    y_twice = [twice(x, training=True).numpy() for _ in range(2)][-1]
    with repeated_updates(model, 2):
        assert (updates_per_call(once), updates_per_call(twice)) == (2, 1)  # only the model's layers
        y_once = once(x, training=True).numpy()
    assert updates_per_call(once) == 1
    np.testing.assert_allclose(y_once, y_twice, atol=1e-6)  # the output is the batch's, unchanged
    # 0.9 * (0.9 * 0 + 0.1 m) + 0.1 m = 0.19 m
    flat = x.reshape(-1, 3)
    np.testing.assert_allclose(once.moving_mean.numpy(), 0.19 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(once.moving_mean.numpy(), twice.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(once.moving_variance.numpy(), twice.moving_variance.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="positive integer"):
        with repeated_updates(model, 0):
            pass


def test_scale_false_has_no_gamma_as_keras_batchnormalization():
    x = np.random.default_rng(4).normal(3.0, 2.0, (2, 3, 3, 4)).astype("float32")
    layer = FusedBatchNorm(scale=False, beta_initializer="ones", name="bn")
    keras_bn = keras.layers.BatchNormalization(scale=False, name="bn")
    keras_bn.build((None, 3, 3, 4))
    layer.build((None, 3, 3, 4))
    assert [w.path for w in layer.weights] == [w.path for w in keras_bn.weights] == [
        "bn/beta", "bn/moving_mean", "bn/moving_variance"]
    flat = x.reshape(-1, 4)
    expected = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5) + 1.0  # scale 1, offset 1
    np.testing.assert_allclose(layer(x, training=True).numpy().reshape(-1, 4), expected, atol=1e-5)
    assert FusedBatchNorm.from_config(layer.get_config()).scale is False
