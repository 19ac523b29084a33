"""Fine-tuning builder: layout, frozen backbone, unfreezing, weights, round trips.

The weight-file table and the resolver themselves are tests/kcv/models/pretrained_test.py."""
import dataclasses
import importlib
import os
import socket

import h5py
import keras
import numpy as np
import pytest
from keras.src.utils import file_utils

from kcv.models import get_model, list_models
from kcv.models.finetune import ImagenetPreprocess, backbone_network, finetune, unfreeze, weighted_layers
from kcv.models.pretrained import PretrainedWeightsError

# kcv.models.finetune is the builder once the package loads its modules; this is the module
ft = importlib.import_module("kcv.models.finetune")

SMALL = dict(backbone="mobilenet_v3_small", weights=None, keep_imagenet_top=False, input_shape=(32, 32, 3))


def _images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _write_legacy_h5(model, path):
    """Keras' downloadable ImageNet weight files are in this legacy HDF5 layout."""
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy.save_weights_to_hdf5_group(f, model)


def test_small_no_top_layout_params_and_no_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the builder touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(file_utils, "get_file", no_network)
    model = finetune(5, seed=0, **SMALL)
    assert [l.name for l in model.layers] == ["images", "preprocess", "backbone", "head_dense", "logits"]
    assert model.output.shape == (None, 5)
    assert model(_images(2, 32)).shape == (2, 5)
    network = backbone_network(model)
    assert network.name == "MobileNetV3Small" and network.output.shape == (None, 576)  # pooled features
    # only the head trains: 576·256 + 256 = 147,712 and 256·5 + 5 = 1,285 -> 148,997
    assert [w.path for w in model.trainable_weights] == [
        "head_dense/kernel", "head_dense/bias", "logits/kernel", "logits/bias"
    ]
    assert _trainable_count(model) == 148_997
    # the backbone is Keras' no-top MobileNetV3Small: 939,120 parameters, all frozen
    assert network.count_params() == 939_120
    assert not model.get_layer("backbone").trainable and not network.trainable


def test_book_layout_keeps_the_1000_imagenet_logits_at_224():
    model = finetune(7, backbone="mobilenet_v3_small", weights=None, input_shape=(224, 224, 3), seed=0)
    assert model.output.shape == (None, 7)
    backbone = backbone_network(model)
    assert backbone.output.shape == (None, 1000)
    assert backbone.layers[-1].get_config()["activation"] == "linear"  # logits, no softmax
    # head: 1000·256 + 256 = 256,256 and 256·7 + 7 = 1,799 -> 258,055 trainable
    assert _trainable_count(model) == 258_055
    assert backbone.count_params() == 2_554_968  # Keras' MobileNetV3Small with top
    scores = backbone(_images(1, 224)).numpy()
    assert scores.min() < 0 and not np.isclose(scores.sum(), 1.0)  # not probabilities


# A randomly initialised MobileNetV3 in inference mode shrinks its features to ~1e-10, too small
# for the head's kernels to move in float32; a random ResNet-50 keeps them near 1.
RESNET = dict(backbone="resnet50", weights=None, keep_imagenet_top=False, input_shape=(32, 32, 3))
HEAD = {"head_dense/kernel", "head_dense/bias", "logits/kernel", "logits/bias"}


def _compiled(model):
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_train_step_changes_only_the_head():
    model = _compiled(finetune(3, seed=1, **RESNET))
    before = {w.path: w.numpy().copy() for w in model.weights}
    model.train_on_batch(_images(4, 32, seed=1), np.array([0, 1, 2, 0]))
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    # every head weight moves; nothing in the backbone does, batch-norm statistics included
    assert changed == HEAD


def test_trainable_layers_unfreezes_exactly_the_last_n():
    model = _compiled(finetune(3, trainable_layers=3, seed=2, **RESNET))
    weighted = weighted_layers(backbone_network(model))
    last3 = ["conv5_block3_2_bn", "conv5_block3_3_conv", "conv5_block3_3_bn"]
    assert [l.name for l in weighted[-3:]] == last3
    assert [l.trainable for l in weighted] == [False] * (len(weighted) - 3) + [True] * 3
    # head: 2048·256 + 256 = 524,544 and 256·3 + 3 = 771; BN gamma+beta 2·512 = 1,024;
    # conv 1·1·512·2048 + 2048 = 1,050,624; BN 2·2048 = 4,096 -> 1,581,059
    assert _trainable_count(model) == 524_544 + 771 + 1_024 + 1_050_624 + 4_096
    before = {w.path: w.numpy().copy() for w in model.weights}
    model.train_on_batch(_images(4, 32, seed=2), np.array([0, 1, 2, 1]))
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    # the unfrozen layers train, but in inference mode: BN moving statistics stay
    assert changed == HEAD | {
        "conv5_block3_2_bn/gamma", "conv5_block3_2_bn/beta", "conv5_block3_3_conv/kernel",
        "conv5_block3_3_conv/bias", "conv5_block3_3_bn/gamma", "conv5_block3_3_bn/beta",
    }
    unfreeze(model, 0)  # back to phase one
    assert _trainable_count(model) == 524_544 + 771
    with pytest.raises(ValueError, match=f"must be in 0..{len(weighted)} .*layers with weights.*got 107"):
        unfreeze(model, 107)


def test_missing_imagenet_weights_is_one_line_before_building(tmp_path, monkeypatch):
    cache = tmp_path / "keras_home"
    cache.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(cache))

    def never(**kwargs):
        raise AssertionError("constructed the backbone before checking the weights")

    spec = ft.BACKBONES["resnet50"]
    monkeypatch.setitem(ft.BACKBONES, "resnet50", dataclasses.replace(spec, constructor=never))
    for top, file_name in ((True, "resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
                           (False, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")):
        with pytest.raises(PretrainedWeightsError) as err:
            finetune(120, keep_imagenet_top=top)
        message = str(err.value)
        assert "\n" not in message
        assert os.path.join(str(cache), "models", file_name) in message
        assert "--weights=PATH" in message and "--download" in message


def test_imagenet_from_cache_matches_keras_efficientnet(tmp_path, monkeypatch):
    # A stand-in for efficientnetb0_notop.h5: random weights, but a Normalization layer holding
    # ImageNet mean and (as Keras' file does) the std in place of the variance.
    source = keras.applications.EfficientNetB0(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    norm = next(l for l in source.layers if isinstance(l, keras.layers.Normalization))
    norm.adapt_mean.assign([0.485, 0.456, 0.406])
    norm.adapt_variance.assign([0.229, 0.224, 0.225])
    path = str(tmp_path / "models" / "efficientnetb0_notop.h5")
    _write_legacy_h5(source, path)

    mine = finetune(4, backbone="efficientnet_b0", weights="imagenet", keep_imagenet_top=False,
                    input_shape=(32, 32, 3), cache_dir=str(tmp_path))

    def cached(fname, origin, **kwargs):
        assert fname == "efficientnetb0_notop.h5"
        return path

    monkeypatch.setattr(file_utils, "get_file", cached)
    reference = keras.applications.EfficientNetB0(weights="imagenet", include_top=False, pooling="avg",
                                                  input_shape=(32, 32, 3))
    x = _images(2, 32, seed=3)
    got = mine.get_layer("backbone")(mine.get_layer("preprocess")(x)).numpy()
    want = reference(x).numpy()
    scale = np.abs(want).max()  # a random EfficientNet in inference mode gives features ~1e-6
    np.testing.assert_allclose(got / scale, want / scale, atol=1e-4)
    # without the variance fix the weights=None graph would differ from Keras' ImageNet graph
    plain = keras.applications.EfficientNetB0(weights=path, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert np.abs(plain(x).numpy() - want).max() > 0.1 * scale


def test_local_weights_file_loads_and_bad_ones_are_one_line(tmp_path):
    source = keras.applications.MobileNetV3Small(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    path = str(tmp_path / "mnv3.weights.h5")
    source.save_weights(path)
    model = finetune(3, **{**SMALL, "weights": path})
    np.testing.assert_array_equal(
        backbone_network(model).get_layer("conv_1").kernel.numpy(), source.get_layer("conv_1").kernel.numpy()
    )
    missing = "mobilenet_v3_small weights file not found: .*nope.h5"
    with pytest.raises(PretrainedWeightsError, match=missing):
        finetune(3, **{**SMALL, "weights": str(tmp_path / "nope.h5")})
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(PretrainedWeightsError) as err:
        finetune(3, **{**SMALL, "weights": str(garbage)})
    assert "could not load mobilenet_v3_small weights" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="needs input_shape \\(224, 224, 3\\)"):
        finetune(3, **{**SMALL, "weights": path, "keep_imagenet_top": True})
    with pytest.raises(PretrainedWeightsError, match="path to a .h5"):
        finetune(3, **{**SMALL, "weights": "imagenet21k"})
    with pytest.raises(ValueError, match="unknown backbone 'resnet34'; choose from .*efficientnet_b0"):
        finetune(3, **{**SMALL, "backbone": "resnet34"})


def test_preprocess_modes_by_hand():
    x = np.array([255.0, 127.5, 0.0], "float32").reshape(1, 1, 1, 3)
    # caffe: RGB (255, 127.5, 0) -> BGR (0, 127.5, 255) minus (103.939, 116.779, 123.68)
    caffe = ImagenetPreprocess("caffe")(x).numpy().reshape(3)
    np.testing.assert_allclose(caffe, [-103.939, 10.721, 131.32], rtol=1e-5)
    np.testing.assert_allclose(caffe, keras.applications.resnet.preprocess_input(x.copy()).reshape(3), rtol=1e-6)
    # torch: (1, 0.5, 0) minus (0.485, 0.456, 0.406) over (0.229, 0.224, 0.225)
    torch = ImagenetPreprocess("torch")(x).numpy().reshape(3)
    np.testing.assert_allclose(torch, [0.515 / 0.229, 0.044 / 0.224, -0.406 / 0.225], rtol=1e-5)
    np.testing.assert_allclose(torch, keras.applications.densenet.preprocess_input(x.copy()).reshape(3), rtol=1e-5)
    np.testing.assert_array_equal(ImagenetPreprocess("none")(x).numpy(), x)
    with pytest.raises(ValueError, match="unknown preprocess mode"):
        ImagenetPreprocess("tf")


def test_registry_and_keras_round_trip(tmp_path):
    assert "finetune" in list_models()
    model = get_model("finetune", num_classes=3, trainable_layers=2, seed=4, **SMALL)
    x = _images(2, 32, seed=4)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert [w.path for w in loaded.trainable_weights] == [w.path for w in model.trainable_weights]
    assert loaded.get_layer("preprocess").mode == "none"


def test_mixed_precision_logits_are_float32():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = finetune(3, **SMALL)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("head_dense").compute_dtype == "float16"
    assert model.output.dtype == "float32"
    assert model(_images(1, 32)).dtype == "float32"
