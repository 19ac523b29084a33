"""Detector SavedModel: signatures, pixel boxes of the original image, parity with TinySSD.detect,
determinism, plain-TF load without keras or kcv, REST mapping."""
import base64
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kcv.data.images import DEFAULT_MAX_IMAGE_PIXELS, encode_png
from kcv.models.tiny_ssd import tiny_ssd
from kcv.serving.detector import export_detector, to_pixel_boxes
from kcv.serving.rest import call_rest

SIZE = 64  # a 64x64 TinySSD keeps the test fast; the graph is the same as for 256x256
MAX_DET = 10


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_ssd(num_classes=2, input_shape=(SIZE, SIZE, 3), seed=3)
    # Move the batch-norm statistics away from their initial values with a training-mode call,
    # so a graph that ran in training mode would differ from the inference outputs.
    rng = np.random.default_rng(0)
    model(rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32"), training=True)
    path = str(tmp_path_factory.mktemp("export") / "detector")
    export_detector(model, path, image_size=(SIZE, SIZE), max_detections=MAX_DET, score_threshold=0.05)
    images = rng.integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    return model, path, images


def _expected(model, images, heights, widths):
    out = model.detect(images.astype("float32"), max_detections=MAX_DET, score_threshold=0.05)
    n = out["num_detections"].numpy()
    boxes = to_pixel_boxes(out["boxes"], tf.constant(heights), tf.constant(widths)).numpy()
    for b, k in enumerate(n):
        boxes[b, k:] = 0
    return {"boxes": boxes, "scores": out["scores"].numpy(), "classes": out["classes"].numpy(), "num_detections": n}


def _check(got, want):
    np.testing.assert_array_equal(got["num_detections"], want["num_detections"])
    np.testing.assert_array_equal(got["classes"], want["classes"])
    np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
    np.testing.assert_allclose(got["boxes"], want["boxes"], atol=1e-3)


def test_signatures_types_and_parity(exported):
    model, path, images = exported
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == ["serving_default", "serving_images"]
    out = loaded.signatures["serving_images"](images=tf.constant(images))
    assert out["boxes"].dtype == tf.float32 and out["boxes"].shape == (3, MAX_DET, 4)
    assert out["scores"].dtype == tf.float32 and out["classes"].dtype == tf.int64
    assert out["num_detections"].dtype == tf.int32 and out["num_detections"].shape == (3,)
    got = {k: v.numpy() for k, v in out.items()}
    _check(got, _expected(model, images, [SIZE] * 3, [SIZE] * 3))
    assert got["num_detections"].max() > 0  # the untrained model still scores some anchors >= 0.05
    for b, n in enumerate(got["num_detections"]):
        assert (got["classes"][b, :n] >= 0).all() and (got["classes"][b, :n] < 2).all()
        assert (got["classes"][b, n:] == -1).all() and (got["boxes"][b, n:] == 0).all()
        assert (np.diff(got["scores"][b, :n]) <= 0).all()  # best first
        assert (got["boxes"][b, :n] >= 0).all() and (got["boxes"][b, :n] <= SIZE).all()


def test_image_bytes_any_size_give_boxes_in_original_pixels(exported):
    model, path, images = exported
    fn = tf.saved_model.load(path).signatures["serving_default"]
    # A 128x96 (W x H) PNG and a JPEG of another size; the graph resizes to 64x64 and scales the
    # boxes back by (128/64, 96/64), i.e. normalised boxes times (W, H, W, H).
    big = np.asarray(Image.fromarray(images[0]).resize((128, 96), Image.BILINEAR))
    buf = io.BytesIO()
    Image.fromarray(images[1]).resize((50, 70)).save(buf, format="JPEG", quality=95)
    data = tf.constant([encode_png(big), buf.getvalue()])
    out1 = {k: v.numpy() for k, v in fn(image_bytes=data).items()}
    out2 = {k: v.numpy() for k, v in fn(image_bytes=data).items()}
    for k in out1:
        np.testing.assert_array_equal(out1[k], out2[k])  # repeated calls are identical
    # Parity: what the model sees is the in-graph resize of the decoded image.
    from kcv.data.preprocess import resize_for_model

    seen = np.stack([resize_for_model(tf.io.decode_image(d, channels=3), (SIZE, SIZE)).numpy() for d in data.numpy()])
    _check(out1, _expected(model, seen, [96, 70], [128, 50]))
    n = out1["num_detections"][0]
    assert n > 0 and out1["boxes"][0, :n, 2].max() <= 128 and out1["boxes"][0, :n, 3].max() <= 96


def test_rest_body_and_empty_batch(exported):
    model, path, images = exported
    loaded = tf.saved_model.load(path)
    body = {"instances": [{"b64": base64.b64encode(encode_png(im)).decode()} for im in images[:2]]}
    answer = call_rest(loaded, json.loads(json.dumps(body)))
    want = _expected(model, images[:2], [SIZE] * 2, [SIZE] * 2)
    assert [p["num_detections"] for p in answer["predictions"]] == want["num_detections"].tolist()
    np.testing.assert_allclose(np.array([p["scores"] for p in answer["predictions"]]), want["scores"], atol=1e-5)
    empty = loaded.signatures["serving_default"](image_bytes=tf.constant([], tf.string))
    assert empty["boxes"].shape == (0, MAX_DET, 4) and empty["num_detections"].shape == (0,)
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serving_default"](image_bytes=tf.constant([b"not an image"]))


def test_empty_images_batch_and_image_limit(exported, tmp_path):
    model, path, images = exported
    loaded = tf.saved_model.load(path)
    empty = loaded.signatures["serving_images"](images=tf.zeros([0, SIZE, SIZE, 3], tf.uint8))
    assert empty["boxes"].shape == (0, MAX_DET, 4) and empty["scores"].shape == (0, MAX_DET)
    assert empty["classes"].shape == (0, MAX_DET) and empty["num_detections"].shape == (0,)
    assert int(loaded.max_image_pixels.numpy()) == DEFAULT_MAX_IMAGE_PIXELS
    small = str(tmp_path / "small")
    export_detector(model, small, image_size=(SIZE, SIZE), max_detections=MAX_DET, max_image_pixels=SIZE * SIZE)
    fn = tf.saved_model.load(small).signatures["serving_default"]
    assert fn(image_bytes=tf.constant([encode_png(images[0])]))["boxes"].shape == (1, MAX_DET, 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image is 65x64 = 4160 pixels, over the limit of 4096"):
        fn(image_bytes=tf.constant([encode_png(np.zeros((SIZE, SIZE + 1, 3), np.uint8))]))


def test_loads_and_runs_without_keras_or_kcv(exported):
    model, path, images = exported
    folder = os.path.dirname(path)
    np.save(os.path.join(folder, "images.npy"), images)
    code = f"""
import sys
sys.modules['keras'] = None
sys.modules['kcv'] = None
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load({path!r})
images = np.load({os.path.join(folder, 'images.npy')!r})
fn = loaded.signatures['serving_images']
a = {{k: v.numpy() for k, v in fn(images=tf.constant(images)).items()}}
b = {{k: v.numpy() for k, v in fn(images=tf.constant(images)).items()}}
assert all((a[k] == b[k]).all() for k in a)
np.savez({os.path.join(folder, 'plain.npz')!r}, **a)
print('OK', sys.modules.get('keras') is not None)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK False" in out.stdout
    plain = dict(np.load(os.path.join(folder, "plain.npz")))
    _check(plain, _expected(model, images, [SIZE] * 3, [SIZE] * 3))


def test_saved_model_cli_lists_the_signatures(exported):
    _, path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run([cli, "show", "--all", "--dir", path], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1000:]
    for text in ("signature_def['serving_default']", "signature_def['serving_images']", "inputs['image_bytes']",
                 "outputs['boxes']", "outputs['scores']", "outputs['classes']", "outputs['num_detections']"):
        assert text in out.stdout


def test_bad_arguments():
    model = tiny_ssd(input_shape=(SIZE, SIZE, 3), seed=0)
    with pytest.raises(ValueError, match="max_detections"):
        export_detector(model, "/nonexistent/x", image_size=(SIZE, SIZE), max_detections=0)
    with pytest.raises(ValueError, match="max_image_pixels"):
        export_detector(model, "/nonexistent/x", image_size=(SIZE, SIZE), max_image_pixels=0)


def test_keras_cv_nms_export_keeps_the_books_boxes_for_one_class(tmp_path):
    """--nms=keras_cv: keras_cv.layers.NonMaxSuppression inside the graph; with one class and the
    same thresholds it keeps the same boxes as the book's NMS (random scores have no ties)."""
    model = tiny_ssd(num_classes=1, input_shape=(SIZE, SIZE, 3), seed=5)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    outs = {}
    for nms in ("kcv", "keras_cv"):
        path = export_detector(model, str(tmp_path / nms), image_size=(SIZE, SIZE), max_detections=MAX_DET,
                               score_threshold=0.05, nms=nms)
        fn = tf.saved_model.load(path).signatures["serving_images"]
        outs[nms] = {k: v.numpy() for k, v in fn(images=tf.constant(images)).items()}
        empty = fn(images=tf.zeros([0, SIZE, SIZE, 3], tf.uint8))
        assert empty["boxes"].shape == (0, MAX_DET, 4) and empty["num_detections"].shape == (0,)
    assert outs["kcv"]["num_detections"].min() > 0
    _check(outs["keras_cv"], outs["kcv"])
    with pytest.raises(ValueError, match="nms must be one of kcv, keras_cv"):
        export_detector(model, str(tmp_path / "bad"), image_size=(SIZE, SIZE), nms="soft")
