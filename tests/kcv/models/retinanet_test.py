"""kcv.models.retinanet: keras-cv's RetinaNet with kcv's small heads, pixel xyxy boxes and `detect`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.models import get_model
from kcv.models.retinanet import NMS_CHOICES, ReplicaMeanLoss, retinanet

SMALL = dict(num_classes=1, input_shape=(64, 64, 3), head_width=8, head_convs=1, seed=0)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _images(batch: int = 2, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _labels(batch: int = 2, garbage_padding: bool = False):
    """Two objects in image 0, one in image 1 (its second row is padding), pixel xyxy."""
    boxes = np.array([[[4, 6, 30, 28], [34, 30, 60, 58]], [[10, 12, 42, 40], [0, 0, 0, 0]]], "float32")[:batch]
    if garbage_padding:
        boxes[1, 1] = [12, 12, 40, 40]  # overlaps a real box: must not take part in matching
    classes = np.array([[0, 0], [0, -1]], "float32")[:batch]
    return {"boxes": tf.constant(boxes), "classes": tf.constant(classes)}


@pytest.fixture(scope="module")
def small():
    return get_model("retinanet", **SMALL)


def _check_padded(out: dict, batch: int, max_detections: int) -> None:
    assert out["boxes"].shape == (batch, max_detections, 4) and out["boxes"].dtype == tf.float32
    assert out["scores"].shape == (batch, max_detections) and out["scores"].dtype == tf.float32
    assert out["classes"].shape == (batch, max_detections) and out["classes"].dtype == tf.int64
    assert out["num_detections"].shape == (batch,) and out["num_detections"].dtype == tf.int32
    boxes, scores, classes = out["boxes"].numpy(), out["scores"].numpy(), out["classes"].numpy()
    for i, n in enumerate(out["num_detections"].numpy()):
        assert 0 <= n <= max_detections
        assert np.all(np.diff(scores[i, :n]) <= 0), "scores must descend"
        assert np.all(scores[i, :n] > 0) and np.all(classes[i, :n] >= 0)
        assert np.all(boxes[i, n:] == 0) and np.all(scores[i, n:] == 0) and np.all(classes[i, n:] == -1)
        x1, y1, x2, y2 = boxes[i, :n].T
        assert np.all(x1 <= x2) and np.all(y1 <= y2)


def test_is_keras_cv_retinanet_with_default_shapes():
    import keras_cv

    model = get_model("retinanet", seed=0)
    assert isinstance(model, keras_cv.models.RetinaNet) and type(model).__name__ == "KcvRetinaNet"
    assert model.bounding_box_format == "xyxy" and model.image_shape == (128, 128, 3)
    # 9 anchors at P3..P7 of a 128-px image: 16^2 + 8^2 + 4^2 + 2^2 + 1^2 positions.
    assert model.num_anchors == 9 * (256 + 64 + 16 + 4 + 1) == 3069
    out = model(_images(1, 128), training=False)
    assert out["box"].shape == (1, 3069, 4) and out["classification"].shape == (1, 3069, 1)
    # The class head starts at the focal-loss prior: every anchor's sigmoid is 0.01 before training.
    bias = model.classification_head.prediction_layer.bias.numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-bias)), 0.01, rtol=1e-5)
    norms = [layer for layer in model.backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms) and model.get_config()["bn_momentum"] == 0.9
    print(f"retinanet default (ResNet-18, 128x128, head 64x2): {model.count_params():,} parameters")
    assert model.count_params() == 11_860_013


def test_same_seed_same_weights_without_global_seed():
    a, b = get_model("retinanet", **SMALL), get_model("retinanet", **SMALL)
    c = get_model("retinanet", **{**SMALL, "seed": 1})
    wa, wb, wc = a.get_weights(), b.get_weights(), c.get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
    # Every randomly initialised variable depends on the seed (batch norm starts at constants).
    random_init = [i for i, w in enumerate(a.weights) if w.path.endswith("kernel")]
    assert random_init and all(not np.array_equal(wa[i], wc[i]) for i in random_init)


@pytest.mark.parametrize("nms", NMS_CHOICES)
def test_detect_shapes_dtypes_and_padding(small, nms):
    x = _images(2)
    full = small.detect(x, max_detections=20, score_threshold=0.0, nms="kcv")
    s = full["scores"].numpy()[0]
    threshold = float((s[4] + s[5]) / 2)  # image 0 keeps exactly 5 detections
    out = small.detect(x, max_detections=20, score_threshold=threshold, nms=nms)
    _check_padded(out, 2, 20)
    assert out["num_detections"].numpy()[0] == 5


@pytest.mark.parametrize("nms", NMS_CHOICES)
def test_detect_traces_with_unknown_batch(small, nms):
    fn = tf.function(lambda images: small.detect(images, max_detections=7, nms=nms),
                     input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.uint8)])
    concrete = fn.get_concrete_function()
    assert concrete.structured_outputs["boxes"].shape.as_list() == [None, 7, 4]
    assert concrete.structured_outputs["num_detections"].shape.as_list() == [None]
    x = _images(3).astype("uint8")
    graph, eager = fn(tf.constant(x)), small.detect(x.astype("float32"), max_detections=7, nms=nms)
    _check_padded(graph, 3, 7)
    for key in graph:
        np.testing.assert_allclose(graph[key].numpy(), eager[key].numpy(), rtol=1e-5, atol=1e-6)


def test_detect_traces_in_export_archive(small):
    """As kcv/serving exports detectors: model.detect in an ExportArchive endpoint, batch None.

    (Writing the SavedModel out and loading it back also matches; it is left out here because
    saving ResNet-18's 11M weights costs most of a minute on two shared cores.)
    """
    archive = keras.export.ExportArchive()
    archive.track(small)
    x = _images(2).astype("uint8")
    for nms in NMS_CHOICES:
        endpoint = archive.add_endpoint(
            f"detect_{nms}", lambda images, nms=nms: small.detect(tf.cast(images, tf.float32), nms=nms),
            input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.uint8, name="images")])
        got, want = endpoint(tf.constant(x)), small.detect(x, nms=nms)
        for key in want:
            np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), rtol=1e-5, atol=1e-6)


def test_both_nms_keep_the_same_boxes_for_one_class(small):
    x = _images(2, seed=3)
    a = small.detect(x, max_detections=30, nms_threshold=0.5, score_threshold=0.005, nms="keras_cv")
    b = small.detect(x, max_detections=30, nms_threshold=0.5, score_threshold=0.005, nms="kcv")
    assert np.all(a["num_detections"].numpy() > 0)
    for key in ("boxes", "scores", "classes", "num_detections"):
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)


def test_keras_cv_detect_equals_decode_predictions(small):
    """nms="keras_cv" is keras-cv's own decoding (its default decoder here: 100, IoU 0.5, score 0.01)."""
    x = _images(2, seed=4)
    want = small.decode_predictions(small(x, training=False), tf.constant(x))
    got = small.detect(x)
    n = want["num_detections"].numpy()
    np.testing.assert_array_equal(got["num_detections"].numpy(), n)
    for i in range(2):
        np.testing.assert_allclose(got["boxes"].numpy()[i, :n[i]] * 64, want["boxes"].numpy()[i, :n[i]], atol=1e-4)
        np.testing.assert_allclose(got["scores"].numpy()[i, :n[i]], want["confidence"].numpy()[i, :n[i]], rtol=1e-6)


def test_predict_gives_detect(small):
    x = _images(2, seed=5)
    out = small.predict(x, batch_size=2, verbose=0)
    want = small.detect(x)
    assert set(out) == set(want)
    np.testing.assert_allclose(out["scores"], want["scores"].numpy(), rtol=1e-5, atol=1e-6)


def test_unknown_nms_and_bad_arguments(small):
    with pytest.raises(ValueError, match="nms must be one of keras_cv, kcv"):
        small.detect(_images(1), nms="soft")
    with pytest.raises(ValueError, match="depth"):
        get_model("retinanet", depth=19)
    with pytest.raises(ValueError, match="anchor_sizes"):
        get_model("retinanet", anchor_sizes=(16.0, 32.0))


def test_detect_is_float32_under_mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = get_model("retinanet", **SMALL)
        for nms in NMS_CHOICES:
            _check_padded(model.detect(_images(1), max_detections=5, nms=nms), 1, 5)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_weights_file_round_trip(small, tmp_path):
    model = get_model("retinanet", **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.train_step((tf.constant(_images(2)), _labels()))  # move weights and batch-norm statistics
    path = str(tmp_path / "retinanet.weights.h5")
    model.save_weights(path)
    loaded = retinanet(**{**SMALL, "seed": 7}, weights=path)
    x = _images(2, seed=6)
    for key, value in model(x).items():
        np.testing.assert_allclose(loaded(x)[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
    for key, value in model.detect(x).items():
        np.testing.assert_allclose(loaded.detect(x)[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)


def test_missing_or_wrong_weights_file(tmp_path):
    missing = str(tmp_path / "nothing.weights.h5")
    with pytest.raises(ValueError, match="nothing.weights.h5"):
        retinanet(**SMALL, weights=missing)
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        retinanet(**SMALL, weights=str(tmp_path / "model.keras"))


def test_compile_defaults_to_keras_cv_losses():
    import keras_cv

    model = get_model("retinanet", **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert isinstance(model.box_loss, ReplicaMeanLoss) and isinstance(model.box_loss.loss, keras_cv.losses.SmoothL1Loss)
    assert isinstance(model.classification_loss.loss, keras_cv.losses.FocalLoss)
    assert model.classification_loss.from_logits
    with pytest.raises(ValueError, match="does not accept a `loss`"):
        model.compile(optimizer="adam", loss="mse")


def test_padding_rows_do_not_take_part_in_matching():
    model = get_model("retinanet", **SMALL)
    model.compile(optimizer="adam")
    x = tf.constant(_images(2))
    y_pred = model(x, training=False)
    clean = model.compute_loss(x, _labels(), y_pred, None)
    garbage = model.compute_loss(x, _labels(garbage_padding=True), y_pred, None)
    assert np.isfinite(float(clean)) and float(clean) == pytest.approx(float(garbage), rel=1e-6)


def test_train_step_under_strategy_run_decreases_the_loss():
    """As pipelines/loop.py trains: model.train_step under strategy.run inside tf.function."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = get_model("retinanet", **SMALL)
        model.compile(optimizer=keras.optimizers.SGD(1e-3))
    x, y = tf.constant(_images(2)), _labels()
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    with strategy.scope():  # what pipelines/loop.build_state does before the first distributed step
        model._symbolic_build(data_batch=dataset.element_spec)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def step(it):
        logs = strategy.run(model.train_step, args=(next(it),))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    def loss() -> float:  # the training-mode loss on the fixed batch
        return float(model.compute_loss(x, y, model(x, training=True), None))

    before = loss()
    logs = step(iterator)
    assert {"loss", "box_loss", "classification_loss"} <= set(logs)
    assert float(logs["loss"]) == pytest.approx(float(logs["box_loss"]) + float(logs["classification_loss"]), rel=1e-4)
    assert float(logs["loss"]) == pytest.approx(before, rel=1e-4)
    after = loss()
    assert np.isfinite(after) and after < before, (before, after)


def test_import_does_not_load_keras_cv_and_keras_file_loads_after_plain_import(tmp_path):
    model = get_model("retinanet", **SMALL)
    model.compile(optimizer="adam")  # a compiled model's file holds the wrapped keras-cv losses
    path = str(tmp_path / "retinanet.keras")
    model.save(path)
    x = _images(1, seed=8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", model(x)["classification"].numpy())
    script = textwrap.dedent(f"""
        import json, sys, warnings
        import numpy as np
        import kcv, keras
        kcv.models.list_models()
        kcv.models.get_model("tiny_ssd", input_shape=(64, 64, 3))
        before = "keras_cv" in sys.modules
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = keras.saving.load_model({path!r})
        got = loaded(np.load({str(tmp_path / "x.npy")!r}))["classification"].numpy()
        diff = float(np.abs(got - np.load({str(tmp_path / "want.npy")!r})).max())
        print(json.dumps({{"before": before, "type": type(loaded).__name__, "diff": diff}}))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"] is False, "import kcv / list_models / tiny_ssd imported keras_cv"
    assert report["type"] == "KcvRetinaNet" and report["diff"] < 1e-5, report
