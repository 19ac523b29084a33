"""kcv.layers.BatchNorm: book semantics, parity with Keras BN, mixed precision, MirroredStrategy."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kcv.layers import BatchNorm


def test_hand_numbers_dense_biased_variance_and_moving_update():
    bn = BatchNorm()
    x = np.array([[0.0], [4.0]], "float32")  # mean 2, biased variance ((-2)^2 + 2^2) / 2 = 4
    y = bn(x, training=True).numpy()
    # (x - 2) / sqrt(4 + 1e-5) = -+0.99999875
    np.testing.assert_allclose(y, [[-2 / np.sqrt(4 + 1e-5)], [2 / np.sqrt(4 + 1e-5)]], rtol=1e-6)
    # moving_mean = 0.9 * 0 + 0.1 * 2 = 0.2; moving_var = 0.9 * 1 + 0.1 * 4 = 1.3
    # (the unbiased variance 8 would give 1.7)
    np.testing.assert_allclose(bn.moving_mean.numpy(), [0.2], rtol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), [1.3], rtol=1e-6)
    # Inference uses the moving statistics: (4 - 0.2) / sqrt(1.3 + 1e-5)
    y_inf = bn(np.array([[4.0]], "float32"), training=False).numpy()
    np.testing.assert_allclose(y_inf, [[3.8 / np.sqrt(1.3 + 1e-5)]], rtol=1e-6)


def test_conv_statistics_per_channel_over_n_h_w():
    bn = BatchNorm()
    x = np.zeros((2, 2, 2, 2), "float32")  # (N, H, W, C)
    x[..., 0] = np.arange(8).reshape(2, 2, 2)  # channel 0: 0..7, mean 3.5, biased var 5.25
    x[..., 1] = 10.0  # channel 1: constant, mean 10, var 0
    y = bn(x, training=True).numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), [0.35, 1.0], rtol=1e-6)  # 0.1 * mean
    np.testing.assert_allclose(bn.moving_variance.numpy(), [0.9 + 0.525, 0.9], rtol=1e-6)
    np.testing.assert_allclose(y[..., 0], (x[..., 0] - 3.5) / np.sqrt(5.25 + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(y[..., 1], 0.0, atol=1e-7)


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 2)], ids=["dense", "conv"])
def test_matches_keras_batchnormalization_after_training_steps(shape):
    rng = np.random.default_rng(0)
    ours = BatchNorm()
    ref = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    ours.build(shape)
    ref.build(shape)
    opt_ours, opt_ref = keras.optimizers.SGD(0.5), keras.optimizers.SGD(0.5)
    import tensorflow as tf

    for _ in range(4):
        x = (rng.normal(size=shape) * 3.0 + 2.0).astype("float32")
        w = rng.normal(size=shape).astype("float32")  # loss = sum(y * w): non-trivial gradients
        grads = []
        for layer in (ours, ref):
            with tf.GradientTape() as tape:
                y = layer(x, training=True)
                loss = tf.reduce_sum(y * w)
            grads.append((y.numpy(), tape.gradient(loss, layer.trainable_weights)))
        np.testing.assert_allclose(grads[0][0], grads[1][0], atol=1e-5)
        opt_ours.apply(grads[0][1], ours.trainable_weights)
        opt_ref.apply(grads[1][1], ref.trainable_weights)
    for a, b in [
        (ours.gamma, ref.gamma),
        (ours.beta, ref.beta),
        (ours.moving_mean, ref.moving_mean),
        (ours.moving_variance, ref.moving_variance),
    ]:
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    # The steps moved everything away from the initial values, so the comparison has teeth.
    assert np.abs(ours.gamma.numpy() - 1.0).max() > 1e-2
    assert np.abs(ours.moving_mean.numpy()).max() > 0.5
    x = (rng.normal(size=shape) * 3.0 + 2.0).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), ref(x, training=False), atol=1e-5)


def test_not_trainable_runs_in_inference_mode():
    bn = BatchNorm()
    bn.build((None, 1))
    bn.trainable = False
    y = bn(np.array([[0.0], [4.0]], "float32"), training=True).numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), [0.0])
    np.testing.assert_allclose(y, [[0.0], [4.0 / np.sqrt(1 + 1e-5)]], rtol=1e-6)


def test_mixed_precision_stats_in_float32_output_in_compute_dtype():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        bn = BatchNorm()
        # 300^2 = 90000 overflows float16 (max 65504): the variance must be taken in float32.
        x = np.array([[300.0], [-300.0], [300.0], [-300.0]], "float16")
        y = bn(x, training=True)
        assert y.dtype == "float16"
        assert bn.gamma.dtype == "float32" and bn.moving_variance.dtype == "float32"
        # mean 0, biased variance 90000: moving_var = 0.9 + 9000
        np.testing.assert_allclose(bn.moving_variance.numpy(), [9000.9], rtol=1e-6)
        np.testing.assert_allclose(y.numpy().astype("float32"), [[1], [-1], [1], [-1]], atol=1e-3)
        y_inf = bn(x, training=False)
        assert y_inf.dtype == "float16"
        assert np.all(np.isfinite(y_inf.numpy()))
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_config_and_keras_file_round_trip(tmp_path):
    bn = BatchNorm(momentum=0.8, epsilon=1e-3, name="bn")
    clone = BatchNorm.from_config(bn.get_config())
    assert (clone.momentum, clone.epsilon, clone.name) == (0.8, 1e-3, "bn")
    model = keras.Sequential([keras.Input((3, 3, 2)), bn])
    x = np.random.default_rng(1).normal(size=(4, 3, 3, 2)).astype("float32") + 1.0
    model(x, training=True)  # move the statistics off their initial values
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[0], BatchNorm)
    np.testing.assert_allclose(loaded.layers[0].moving_mean.numpy(), bn.moving_mean.numpy())
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        BatchNorm(epsilon=0.0)
    with pytest.raises(ValueError, match="channel"):
        BatchNorm().build((None, None))


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from kcv.layers import BatchNorm

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        bn = BatchNorm()
        bn.build((None, 1))
    # Replica 0 sees only zeros, replica 1 only twos: each replica's variance is 0.
    x = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.fill((2, 1), 2.0 * tf.cast(ctx.replica_id_in_sync_group, tf.float32)))
    out = strategy.run(tf.function(lambda t: bn(t, training=True)), args=(x,))
    outs = [v.numpy().ravel().tolist() for v in strategy.experimental_local_results(out)]
    copies = [v.numpy().tolist() for v in bn.moving_mean.value.values]

    with strategy.scope():  # and it trains with fit()
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), BatchNorm(),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    data = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    hist = model.fit(data, data[:, :1], batch_size=4, epochs=1, verbose=0)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "outs": outs,
        "moving_mean": bn.moving_mean.numpy().tolist(),
        "moving_variance": bn.moving_variance.numpy().tolist(),
        "copies": copies,
        "fit_loss": hist.history["loss"][0],
        "fit_moving_mean": model.layers[1].moving_mean.numpy().tolist(),
    }))
    """
)


def test_mirrored_strategy_two_logical_cpus_per_replica_statistics():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT], capture_output=True, text=True, env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    # Per-replica normalisation of constant slices gives beta = 0 everywhere.
    assert result["outs"] == [[0.0, 0.0], [0.0, 0.0]]
    # moving_mean = 0.1 * mean(0, 2) = 0.1.
    np.testing.assert_allclose(result["moving_mean"], [0.1], rtol=1e-6)
    # Per-replica variances are 0: moving_var = 0.9 * 1 + 0.1 * 0 = 0.9 (a synchronised BN
    # would see the global variance 1 and give 1.0).
    np.testing.assert_allclose(result["moving_variance"], [0.9], rtol=1e-6)
    # Both mirrored copies hold the replica-mean update (without aggregation="mean" replica 0's
    # copy would keep 0.0 and replica 1's 0.2).
    np.testing.assert_allclose(result["copies"], [[0.1], [0.1]], rtol=1e-6)
    assert np.isfinite(result["fit_loss"])
    assert np.abs(result["fit_moving_mean"]).max() > 0.0
