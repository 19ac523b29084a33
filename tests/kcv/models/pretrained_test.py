"""kcv.models.pretrained: the weight-file table, the one vocabulary, one-line PretrainedWeightsError."""
import importlib

import keras
import pytest
from keras.src.utils import file_utils

from kcv.models import pretrained
from kcv.models.pretrained import PRETRAINED, PretrainedWeightsError, resolve_weights

ft = importlib.import_module("kcv.models.finetune")  # the module (kcv.models.finetune is the builder)


def test_random_init_words_and_none():
    for weights in (None, "none", "None", "random", " RANDOM "):
        assert resolve_weights("resnet50", weights) is None, weights
    assert pretrained.is_random_init("none") and not pretrained.is_random_init("imagenet")
    for word in ("imagenet", "none", "random", ".h5"):  # the help text spells the vocabulary
        assert word in pretrained.WEIGHTS_CHOICES


def test_imagenet_is_the_keras_cache_file(tmp_path):
    path = tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    path.parent.mkdir()
    path.write_bytes(b"")
    assert resolve_weights("vgg19", "imagenet", include_top=False, cache_dir=str(tmp_path)) == str(path)
    # include_top picks the other file, which is not there: one line naming it and the flags
    with pytest.raises(PretrainedWeightsError) as err:
        resolve_weights("vgg19", "ImageNet", include_top=True, cache_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels.h5") in message
    assert "--download" in message and "--weights=PATH" in message and "--weights=none" in message


def test_imagenet_default_cache_is_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    (tmp_path / "kh").mkdir()
    assert pretrained.keras_cache_dir() == str(tmp_path / "kh")
    with pytest.raises(PretrainedWeightsError, match="kh/models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        resolve_weights("resnet50", "imagenet", include_top=False)


def test_download_is_keras_get_file_into_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_get_file(fname, origin, **kwargs):
        calls.append((fname, origin, kwargs))
        return "/somewhere/" + fname

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    path = resolve_weights("efficientnet_b0", "imagenet", include_top=False, allow_download=True,
                           cache_dir=str(tmp_path))
    assert path == "/somewhere/efficientnetb0_notop.h5"
    assert calls == [(
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
        dict(cache_subdir="models", file_hash="50bc09e76180e00e4465e1a485ddc09d", cache_dir=str(tmp_path)),
    )]


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    def offline(fname, origin, **kwargs):
        raise Exception("URL fetch failure on https://...: None -- [Errno -3]\nTemporary failure\nmore")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(PretrainedWeightsError) as err:
        resolve_weights("vgg19", "imagenet", include_top=False, allow_download=True, cache_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and message.startswith("could not download https://")
    assert "--weights=PATH" in message


def test_paths_and_bad_settings(tmp_path):
    local = tmp_path / "mine.weights.h5"
    local.write_bytes(b"")
    assert resolve_weights("resnet50", str(local)) == str(local)
    cases = [
        (str(tmp_path / "nope.h5"), "resnet50 weights file not found: .*nope.h5 \\(--weights=PATH"),
        ("imagenet21k", "not imagenet, none or a path to a .h5 file \\(--weights=imagenet"),
        ("", "must be one of"),
        (3, "must be one of"),
    ]
    for weights, pattern in cases:
        with pytest.raises(PretrainedWeightsError, match=pattern) as err:
            resolve_weights("resnet50", weights)
        assert "\n" not in str(err.value)
    with pytest.raises(PretrainedWeightsError, match="no pretrained weights known for 'resnet34'; known: .*vgg19"):
        resolve_weights("resnet34", "imagenet")
    assert issubclass(PretrainedWeightsError, ValueError)  # callers that catch ValueError keep working


def test_load_error_is_one_line_naming_the_expected_file():
    err = pretrained.load_error("vgg19", "/x/w.h5", OSError("Unable to open file\n(truncated)"), include_top=False)
    assert isinstance(err, PretrainedWeightsError) and "\n" not in str(err)
    assert "could not load vgg19 weights from /x/w.h5 (Unable to open file)" in str(err)
    assert "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(err) and "--weights=PATH" in str(err)


def test_every_finetune_backbone_has_weight_files():
    assert set(ft.BACKBONES) <= set(PRETRAINED) and "vgg19" in PRETRAINED


def _constructor(name):
    return keras.applications.VGG19 if name == "vgg19" else ft.BACKBONES[name].constructor


def _requested_weight_files(monkeypatch, constructor, include_top):
    """(file name, origin, md5) that a keras.applications constructor asks get_file for."""
    asked = []

    class Stop(Exception):
        pass

    def record(fname, origin, **kwargs):
        asked.append((fname, origin, kwargs.get("file_hash")))
        raise Stop

    monkeypatch.setattr(file_utils, "get_file", record)
    kwargs = {"classifier_activation": None} if include_top else {}
    with pytest.raises(Stop):
        constructor(weights="imagenet", include_top=include_top, input_shape=(224, 224, 3), **kwargs)
    return asked[0]


def _check_table(monkeypatch, name):
    files = PRETRAINED[name]
    for top in (True, False):
        fname, origin, md5 = _requested_weight_files(monkeypatch, _constructor(name), top)
        assert (fname, md5) == files.file(top)
        assert origin == files.url + fname
        assert pretrained.weights_file(name, top) == fname


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "vgg19"])
def test_weight_file_names_are_the_ones_keras_asks_for(monkeypatch, name):
    _check_table(monkeypatch, name)


@pytest.mark.large
@pytest.mark.parametrize("name", sorted(set(PRETRAINED) - {"mobilenet_v3_small", "vgg19"}))
def test_weight_file_names_every_backbone(monkeypatch, name):
    _check_table(monkeypatch, name)


def test_the_cache_in_tmp_when_the_root_is_not_writable(tmp_path, monkeypatch):
    # Keras keeps its downloads in /tmp/.keras when the cache root is not writable: look there too.
    monkeypatch.setattr(pretrained.os, "access", lambda path, mode: False)
    found, candidates, root = pretrained.find_cached("x.h5", str(tmp_path))
    assert found is None and root == str(tmp_path)
    assert candidates == [str(tmp_path / "models" / "x.h5"), "/tmp/.keras/models/x.h5"]
    monkeypatch.undo()
    assert pretrained.find_cached("x.h5", str(tmp_path))[1] == [str(tmp_path / "models" / "x.h5")]
