"""Classifier SavedModel: plain-TF load (no keras, no kcv), signatures, parity, REST mapping, bad bytes."""
import base64
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS, encode_png
from kcv.serving.classifier import export_classifier
from kcv.serving.rest import call_rest, instances_to_inputs

NAMES = ["cat", "dog", "emu"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)  # must be off in the exported graph
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    path = str(tmp_path_factory.mktemp("export") / "model")
    export_classifier(model, path, NAMES, (8, 8))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    return model, path, images


def test_signatures_parity_and_determinism(exported):
    model, path, images = exported
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == ["serving_default", "serving_images"]
    assert [n.decode() for n in loaded.class_names.numpy()] == NAMES
    expected = tf.nn.softmax(model(images.astype(np.float32), training=False)).numpy()
    tensor_out = loaded.signatures["serving_images"](images=tf.constant(images))
    np.testing.assert_allclose(tensor_out["probabilities"].numpy(), expected, atol=1e-5)
    data = tf.constant([encode_png(im) for im in images])
    out1 = loaded.signatures["serving_default"](image_bytes=data)
    out2 = loaded.signatures["serving_default"](image_bytes=data)
    np.testing.assert_allclose(out1["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(out1["probabilities"].numpy(), out2["probabilities"].numpy())
    assert out1["classes"].numpy().tolist() == expected.argmax(1).tolist()
    assert [n.decode() for n in out1["class_names"].numpy()] == [NAMES[i] for i in expected.argmax(1)]


def test_any_size_jpeg_is_resized_inside_the_graph(exported):
    _, path, _ = exported
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (37, 21), (10, 200, 30)).save(buf, format="JPEG")
    out = tf.saved_model.load(path).signatures["serving_default"](image_bytes=tf.constant([buf.getvalue()]))
    assert out["probabilities"].shape == (1, 3)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)


def test_malformed_bytes_raise_invalid_argument(exported):
    _, path, _ = exported
    fn = tf.saved_model.load(path).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(image_bytes=tf.constant([b"definitely not an image"]))


def test_empty_batches_give_empty_outputs(exported):
    _, path, _ = exported
    loaded = tf.saved_model.load(path)
    for name, inputs in (("serving_default", {"image_bytes": tf.constant([], tf.string)}),
                         ("serving_images", {"images": tf.zeros([0, 8, 8, 3], tf.uint8)})):
        out = loaded.signatures[name](**inputs)
        assert out["probabilities"].shape == (0, 3) and out["probabilities"].dtype == tf.float32, name
        assert out["classes"].shape == (0,) and out["classes"].dtype == tf.int64, name
        assert out["class_names"].shape == (0,) and out["class_names"].dtype == tf.string, name


def test_image_limit_is_recorded_and_enforced_before_decoding(exported, tmp_path):
    model, path, images = exported
    assert int(tf.saved_model.load(path).max_image_pixels.numpy()) == DEFAULT_MAX_IMAGE_PIXELS
    small = str(tmp_path / "small")
    export_classifier(model, small, NAMES, (8, 8), max_image_pixels=100)
    loaded = tf.saved_model.load(small)
    assert int(loaded.max_image_pixels.numpy()) == 100
    fn = loaded.signatures["serving_default"]
    assert fn(image_bytes=tf.constant([encode_png(images[0])]))["probabilities"].shape == (1, 3)  # 64 pixels
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image is 11x10 = 110 pixels, over the limit of 100 \(--max_image_pixels at export\)"):
        fn(image_bytes=tf.constant([encode_png(images[0]), encode_png(np.zeros((10, 11, 3), np.uint8))]))
    with pytest.raises(ValueError, match="max_image_pixels"):
        export_classifier(model, str(tmp_path / "bad"), NAMES, (8, 8), max_image_pixels=0)


def test_rest_body_maps_onto_serving_default(exported):
    model, path, images = exported
    loaded = tf.saved_model.load(path)
    body = {"signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(encode_png(im)).decode()} for im in images[:2]]}
    answer = call_rest(loaded, json.loads(json.dumps(body)))
    expected = tf.nn.softmax(model(images[:2].astype(np.float32), training=False)).numpy()
    got = np.array([p["probabilities"] for p in answer["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert answer["predictions"][0]["class_names"] in NAMES
    named = {"instances": [{"image_bytes": {"b64": base64.b64encode(encode_png(images[0])).decode()}}]}
    assert instances_to_inputs(named, ["image_bytes"])["image_bytes"][0] == encode_png(images[0])
    # A body in neither format is answered with an error (kcv.serving.rest answers, never raises).
    assert "error" in call_rest(loaded, {"neither": []})


def test_loads_and_runs_without_keras_or_kcv(exported):
    model, path, images = exported
    np.save(os.path.join(os.path.dirname(path), "images.npy"), images)
    code = f"""
import sys
sys.modules['keras'] = None
sys.modules['kcv'] = None
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load({path!r})
images = np.load({os.path.join(os.path.dirname(path), 'images.npy')!r})
a = loaded.signatures['serving_images'](images=tf.constant(images))['probabilities'].numpy()
b = loaded.signatures['serving_images'](images=tf.constant(images))['probabilities'].numpy()
assert (a == b).all()
np.save({os.path.join(os.path.dirname(path), 'plain.npy')!r}, a)
print('OK', 'keras' in sys.modules and sys.modules['keras'] is not None)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK False" in out.stdout
    plain = np.load(os.path.join(os.path.dirname(path), "plain.npy"))
    expected = tf.nn.softmax(model(images.astype(np.float32), training=False)).numpy()
    np.testing.assert_allclose(plain, expected, atol=1e-5)


def test_saved_model_cli_lists_both_signatures(exported):
    _, path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run([cli, "show", "--all", "--dir", path], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert "signature_def['serving_default']" in out.stdout and "signature_def['serving_images']" in out.stdout
    assert "inputs['image_bytes']" in out.stdout and "outputs['probabilities']" in out.stdout


def test_submission_format_is_recorded_for_kcv_predict(exported, tmp_path):
    model, path, _ = exported
    assert tf.saved_model.load(path).submission_format.numpy() == b"labels"  # the default: Kaggle CIFAR-10
    dogs = export_classifier(model, str(tmp_path / "dogs"), NAMES, (8, 8), submission_format="probabilities")
    assert tf.saved_model.load(dogs).submission_format.numpy() == b"probabilities"
    with pytest.raises(ValueError, match="submission_format must be one of labels, probabilities, got 'csv'"):
        export_classifier(model, str(tmp_path / "bad"), NAMES, (8, 8), submission_format="csv")


def test_test_time_flip_averages_the_logits_of_image_and_mirror(exported, tmp_path):
    model, path, images = exported
    assert not bool(tf.saved_model.load(path).test_time_flip.numpy())  # the default: no flip
    flip_path = export_classifier(model, str(tmp_path / "flip"), NAMES, (8, 8), test_time_flip=True)
    loaded = tf.saved_model.load(flip_path)
    assert bool(loaded.test_time_flip.numpy())
    x = images.astype(np.float32)
    logits = (model(x, training=False).numpy() + model(x[:, :, ::-1], training=False).numpy()) / 2
    out = loaded.signatures["serving_images"](images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), tf.nn.softmax(logits).numpy(), rtol=1e-5, atol=1e-6)
    # a mirrored request gets the same answer: the flip-averaged model is mirror-invariant
    mirrored = loaded.signatures["serving_images"](images=tf.constant(images[:, :, ::-1].copy()))
    np.testing.assert_allclose(mirrored["probabilities"].numpy(), out["probabilities"].numpy(), rtol=1e-5, atol=1e-6)
    empty = loaded.signatures["serving_images"](images=tf.zeros([0, 8, 8, 3], tf.uint8))
    assert empty["probabilities"].shape == (0, 3)


def test_test_time_translate_adds_one_pixel_shifts_at_half_weight(exported, tmp_path):
    model, path, images = exported
    assert not bool(tf.saved_model.load(path).test_time_translate.numpy())  # the default: no shifts
    x = images.astype(np.float32)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    up_left, down_right = padded[:, :8, :8], padded[:, 2:, 2:]  # content moved by +1 / -1 pixel each way

    def logits(v):
        return model(v, training=False).numpy().astype(np.float64)

    def mirrored(v):
        return (logits(v) + logits(v[:, :, ::-1])) / 2

    cases = {False: 0.5 * logits(x) + 0.25 * (logits(up_left) + logits(down_right)),
             True: 0.5 * mirrored(x) + 0.25 * (mirrored(up_left) + mirrored(down_right))}
    for flip, expected in cases.items():
        shifted = export_classifier(model, str(tmp_path / f"t{flip}"), NAMES, (8, 8), test_time_flip=flip,
                                    test_time_translate=True)
        loaded = tf.saved_model.load(shifted)
        assert bool(loaded.test_time_translate.numpy()) and bool(loaded.test_time_flip.numpy()) == flip
        out = loaded.signatures["serving_images"](images=tf.constant(images))["probabilities"].numpy()
        np.testing.assert_allclose(out, tf.nn.softmax(expected).numpy(), rtol=1e-4, atol=1e-6)
        assert not np.allclose(out, tf.nn.softmax(logits(x)).numpy(), atol=1e-4)  # the shifts changed the answer
        empty = loaded.signatures["serving_images"](images=tf.zeros([0, 8, 8, 3], tf.uint8))
        assert empty["probabilities"].shape == (0, 3)
