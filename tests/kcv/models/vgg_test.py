"""VGG-19 feature extractor: names, shapes, pre-activation parity with Keras' VGG19, weights."""
import os

import h5py
import keras
import numpy as np
import pytest

from kcv.models import get_model, list_models
from kcv.models import vgg
from kcv.models.pretrained import PretrainedWeightsError, weights_file
from kcv.models.vgg import vgg19_features

NOTOP_FILE = weights_file("vgg19", include_top=False)  # vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5

SMALL = dict(content_layers=("block2_conv2",), style_layers=("block1_conv1", "block2_conv1"))


def _random(**kwargs):
    with pytest.warns(UserWarning, match="random weights"):
        return vgg19_features(weights="random", **kwargs)


def _keras_vgg19():
    return keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))


def test_default_layers_shapes_and_params():
    model = _random(seed=0)
    out = model(np.random.default_rng(0).random((1, 32, 32, 3), dtype="float32"))
    shapes = {k: {n: tuple(t.shape) for n, t in v.items()} for k, v in out.items()}
    # the book: style = first conv of each block, content = last conv of block 4
    assert shapes == {
        "content": {"block4_conv4": (1, 4, 4, 512)},
        "style": {
            "block1_conv1": (1, 32, 32, 64),
            "block2_conv1": (1, 16, 16, 128),
            "block3_conv1": (1, 8, 8, 256),
            "block4_conv1": (1, 4, 4, 512),
            "block5_conv1": (1, 2, 2, 512),
        },
    }
    # truncated after block5_conv1 like the book's net: Keras' no-top VGG19 has 20,024,384
    # parameters, minus block5_conv2..4 = 3 · (3·3·512·512 + 512) = 7,079,424 -> 12,944,960
    assert model.count_params() == 12_944_960
    assert model.trainable_variables == []  # frozen: only the synthesised image is trained
    assert "vgg19_features" in list_models()


def test_caffe_preprocess_by_hand():
    x = np.array([1.0, 0.5, 0.0], "float32").reshape(1, 1, 1, 3)
    # RGB (1, 0.5, 0) -> 0-255 (255, 127.5, 0) -> BGR (0, 127.5, 255)
    # minus (103.939, 116.779, 123.68) -> (-103.939, 10.721, 131.32)
    got = vgg.CaffePreprocess()(x).numpy().reshape(3)
    np.testing.assert_allclose(got, [-103.939, 10.721, 131.32], rtol=1e-5)
    np.testing.assert_allclose(
        got, keras.applications.vgg19.preprocess_input(255.0 * x).reshape(3), rtol=1e-6
    )


def test_pre_activation_relu_equals_keras_vgg19(tmp_path):
    reference = _keras_vgg19()  # random weights, shared through a file
    path = str(tmp_path / "vgg19.weights.h5")
    reference.save_weights(path)
    model = vgg19_features(weights=path)
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype="float32")
    out = model(x)
    names = list(vgg.DEFAULT_STYLE_LAYERS) + list(vgg.DEFAULT_CONTENT_LAYERS)
    tap = keras.Model(reference.input, {n: reference.get_layer(n).output for n in names})
    expected = tap(keras.applications.vgg19.preprocess_input(255.0 * x))
    for name in names:
        mine = out["content"][name] if name in out["content"] else out["style"][name]
        mine = mine.numpy()
        assert mine.min() < 0  # really before the ReLU
        np.testing.assert_allclose(np.maximum(mine, 0), expected[name].numpy(), atol=1e-4)


def test_post_activation_option_matches_keras_directly(tmp_path):
    reference = _keras_vgg19()
    path = str(tmp_path / "v.weights.h5")
    reference.save_weights(path)
    model = vgg19_features(**SMALL, weights=path, pre_activation=False)
    x = np.random.default_rng(2).random((1, 16, 16, 3), dtype="float32")
    got = model(x)["style"]["block2_conv1"].numpy()
    tap = keras.Model(reference.input, reference.get_layer("block2_conv1").output)
    want = tap(keras.applications.vgg19.preprocess_input(255.0 * x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert got.min() >= 0


def _write_legacy_h5(model, path):
    """The on-disk format of Keras' downloadable ImageNet weights (legacy HDF5)."""
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    with h5py.File(path, "w") as f:
        legacy.save_weights_to_hdf5_group(f, model)


def test_imagenet_loads_from_keras_cache_without_network(tmp_path):
    reference = _keras_vgg19()
    os.makedirs(tmp_path / "models")
    _write_legacy_h5(reference, str(tmp_path / "models" / NOTOP_FILE))
    model = vgg19_features(**SMALL, weights="imagenet", cache_dir=str(tmp_path))
    np.testing.assert_array_equal(
        model.get_layer("block2_conv2").get_weights()[0],
        reference.get_layer("block2_conv2").get_weights()[0],
    )


def test_imagenet_missing_offline_is_one_line_naming_flags(tmp_path):
    with pytest.raises(PretrainedWeightsError) as err:
        vgg19_features(weights="imagenet", cache_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message
    assert "--weights" in message and "--download" in message
    assert str(tmp_path / "models" / NOTOP_FILE) in message


def test_missing_or_bad_weights_file_is_one_clear_line(tmp_path):
    missing = str(tmp_path / "nope.h5")
    with pytest.raises(PretrainedWeightsError, match="vgg19 weights file not found: .*nope.h5"):
        vgg19_features(weights=missing)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(PretrainedWeightsError) as err:
        vgg19_features(weights=str(garbage))
    assert "could not load vgg19 weights" in str(err.value) and "\n" not in str(err.value)
    assert NOTOP_FILE in str(err.value)
    with pytest.raises(PretrainedWeightsError, match="imagenet"):
        vgg19_features(weights="resnet")


def test_unknown_layer_lists_the_choices():
    with pytest.raises(ValueError, match="block6_conv1.*block1_conv1"):
        vgg19_features(style_layers=("block6_conv1",), weights="random")


def test_seeded_random_weights_are_reproducible_and_config_round_trips(tmp_path):
    a, b = _random(**SMALL, seed=3), _random(**SMALL, seed=3)
    x = np.random.default_rng(3).random((1, 8, 8, 3), dtype="float32")
    np.testing.assert_array_equal(a(x)["content"]["block2_conv2"], b(x)["content"]["block2_conv2"])
    rebuilt = keras.Model.from_config(a.get_config())
    assert [l.name for l in rebuilt.layers] == [l.name for l in a.layers]
    rebuilt.set_weights(a.get_weights())
    np.testing.assert_allclose(rebuilt(x)["style"]["block2_conv1"], a(x)["style"]["block2_conv1"])
    path = str(tmp_path / "f.keras")
    a.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x)["content"]["block2_conv2"], a(x)["content"]["block2_conv2"])


def test_none_and_random_are_the_same_seeded_initialisation():
    a = _random(**SMALL, seed=5)
    with pytest.warns(UserWarning, match="random weights"):
        b = vgg19_features(weights="none", **SMALL, seed=5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_features_are_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for pre_activation in (True, False):
            model = _random(**SMALL, seed=0, pre_activation=pre_activation)
            assert model.get_layer("block1_conv2").compute_dtype == "bfloat16"  # untapped: mixed
            out = model(np.random.default_rng(4).random((1, 8, 8, 3), dtype="float32"))
            assert {str(t.dtype.name) for t in keras.tree.flatten(out)} == {"float32"}
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_registry_builds_it():
    with pytest.warns(UserWarning):
        model = get_model("vgg19_features", weights="random", **SMALL)
    # block1: 3·3·3·64+64 = 1792, 3·3·64·64+64 = 36928; block2: 3·3·64·128+128 = 73856,
    # 3·3·128·128+128 = 147584 (stops at block2_conv2)
    assert model.count_params() == 1792 + 36928 + 73856 + 147584
