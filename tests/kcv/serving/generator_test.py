"""Generator export: signatures, loads without keras/kcv, deterministic, parity with Keras."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kcv.models.dcgan as dc
from kcv.serving.generator import export_generator

_RELOAD = textwrap.dedent("""
    import sys
    sys.modules["keras"] = None  # `import keras` now raises ImportError
    sys.modules["kcv"] = None
    import numpy as np
    import tensorflow as tf
    for name in ("keras", "kcv"):
        try:
            __import__(name)
            raise SystemExit(name + " is importable")
        except ImportError:
            pass
    path, out = sys.argv[1], sys.argv[2]
    model = tf.saved_model.load(path)
    serve, sample = model.signatures["serving_default"], model.signatures["sample"]
    noise = tf.constant(np.load(out + ".noise.npy"))
    a = serve(noise=noise)["images"].numpy()
    b = serve(noise=noise)["images"].numpy()
    seeds = tf.constant([7, 8, 9], tf.int64)
    s1, s2 = sample(seed=seeds), sample(seed=seeds)
    s3 = sample(seed=tf.constant([10, 11, 12], tf.int64))
    alone = sample(seed=tf.constant([8], tf.int64))  # a row depends on its own seed only
    empty = sample(seed=tf.constant([], tf.int64))
    np.savez(out, serve=a, serve_again=b, sample=s1["images"].numpy(), sample_again=s2["images"].numpy(),
             sample_noise=s1["noise"].numpy(), other_seed=s3["images"].numpy(),
             again_from_noise=serve(noise=s1["noise"])["images"].numpy(),
             alone=alone["images"].numpy(), alone_noise=alone["noise"].numpy(),
             row_noise=tf.random.stateless_normal([100], seed=tf.constant([7, 0], tf.int64)).numpy(),
             empty_images=empty["images"].numpy(), empty_noise=empty["noise"].numpy())
    print("RELOAD_OK", list(model.signatures))
""")


def _spread_weights(g, seed=0):
    """He-scaled kernels and unit BN gammas: outputs span [-1, 1] (the book's N(0, 0.02) init gives ~0)."""
    rng = np.random.default_rng(seed)
    for w in g.weights:
        if w.path.endswith("kernel"):
            k = w.shape  # (k, k, out, in): each output pixel sums k*k/4 taps per input channel at stride 2
            w.assign(rng.normal(0, np.sqrt(2 / (k[0] * k[1] * k[3] / 4)), k).astype(np.float32))
        elif w.path.endswith("gamma"):
            w.assign(np.ones(w.shape, np.float32))
    return g


def _uint8(x):
    return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def test_export_reload_without_keras_and_parity(tmp_path):
    # The book's 64x64 output with a narrow net (base_filters=4) to keep the test small.
    g = _spread_weights(dc.dcgan_generator(latent_dim=100, base_filters=4, seed=0))
    path = export_generator(g, str(tmp_path / "gen" / "1"), latent_dim=100)
    assert sorted(os.listdir(path)) == ["assets", "assets.extra", "fingerprint.pb", "saved_model.pb", "variables"]
    noise = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    out = str(tmp_path / "out")
    np.save(out + ".noise.npy", noise)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", _RELOAD, path, out], capture_output=True, text=True,
                            timeout=300, env=env)
    assert "RELOAD_OK" in result.stdout, result.stderr[-3000:]
    got = np.load(out + ".npz")
    assert got["serve"].dtype == np.uint8 and got["serve"].shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(got["serve"], got["serve_again"])
    np.testing.assert_array_equal(got["sample"], got["sample_again"])  # same seeds
    assert got["sample"].shape == (3, 64, 64, 3) and got["sample_noise"].shape == (3, 100)
    assert not np.array_equal(got["sample"], got["other_seed"])
    np.testing.assert_array_equal(got["alone"][0], got["sample"][1])  # seed 8 alone = seed 8 in a batch
    np.testing.assert_array_equal(got["alone_noise"][0], got["sample_noise"][1])
    np.testing.assert_array_equal(got["sample_noise"][0], got["row_noise"])  # the documented draw
    assert got["empty_images"].shape == (0, 64, 64, 3) and got["empty_images"].dtype == np.uint8
    assert got["empty_noise"].shape == (0, 100) and got["empty_noise"].dtype == np.float32
    np.testing.assert_array_equal(got["again_from_noise"], got["sample"])
    # Parity with the in-memory Keras generator (inference mode) within one uint8 step.
    keras_images = _uint8(g(noise.reshape(4, 1, 1, 100), training=False).numpy())
    assert np.abs(got["serve"].astype(int) - keras_images).max() <= 1
    keras_sample = _uint8(g(got["sample_noise"].reshape(3, 1, 1, 100), training=False).numpy())
    assert np.abs(got["sample"].astype(int) - keras_sample).max() <= 1
    assert np.abs(got["sample_noise"].std() - 1) < 0.2  # N(0, 1) noise: 300 draws
    assert got["serve"].min() < 20 and got["serve"].max() > 235  # images span the range


def test_latent_dim_must_match(tmp_path):
    g = dc.dcgan_generator(latent_dim=8, image_size=16, base_filters=4)
    with pytest.raises(ValueError, match="latent_dim=100 does not match"):
        export_generator(g, str(tmp_path / "x"))
    assert not os.path.exists(tmp_path / "x")


def test_points_output_for_the_toy_gan(tmp_path):
    import tensorflow as tf

    import kcv.models.gan as gan_lib

    g = gan_lib.toy_generator(seed=0)
    path = export_generator(g, str(tmp_path / "toy"), latent_dim=2, output="points")
    loaded = tf.saved_model.load(path)
    noise = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    out = loaded.signatures["serving_default"](noise=tf.constant(noise))
    assert list(out) == ["samples"] and out["samples"].dtype == tf.float32
    np.testing.assert_allclose(out["samples"].numpy(), g(noise).numpy(), atol=1e-6)  # raw, not uint8
    drawn = loaded.signatures["sample"](seed=tf.constant([3, 4, 5, 3], tf.int64))
    assert drawn["samples"].shape == (4, 2) and drawn["noise"].shape == (4, 2)
    np.testing.assert_allclose(drawn["samples"].numpy(), g(drawn["noise"].numpy()).numpy(), atol=1e-6)
    np.testing.assert_array_equal(drawn["samples"].numpy()[0], drawn["samples"].numpy()[3])  # equal seeds
    empty = loaded.signatures["sample"](seed=tf.constant([], tf.int64))
    assert empty["samples"].shape == (0, 2) and empty["noise"].shape == (0, 2)
    assert loaded.signatures["serving_default"](noise=tf.zeros([0, 2]))["samples"].shape == (0, 2)
    with pytest.raises(ValueError, match="output must be 'images' or 'points'"):
        export_generator(g, str(tmp_path / "bad"), latent_dim=2, output="pixels")
