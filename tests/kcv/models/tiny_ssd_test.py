"""TinySSD: the book's shapes, anchor/prediction order, metrics by hand, one train step, save/load,
detection decoding, a short training run, and (large) mAP after training on scenes.

The loss by hand is tests/kcv/losses/detection_test.py, the batch norm
tests/kcv/layers/fused_batch_norm_test.py."""
import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.detection import multibox_prior
from kcv.models import get_model, list_models
from kcv.layers import FusedBatchNorm
from kcv.models.tiny_ssd import TinySSD, outputs_to_detections, outputs_to_padded, tiny_ssd
from kcv.optim.coupled_decay import CoupledSGD

BOOK_SIZES = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]


@pytest.fixture(scope="module")
def book_model():
    return get_model("tiny_ssd", num_classes=1, seed=0)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, 256, 256, 3)).astype("float32")


def test_book_printed_shapes(book_model, images):
    # The book prints, for a batch of 32: anchors (1, 5444, 4), class preds (32, 5444, 2),
    # bbox preds (32, 21776). Batch 2 here; the per-example shapes are the book's.
    # 5444 = 4 anchors * (32^2 + 16^2 + 8^2 + 4^2 + 1^2) = 4 * 1361.
    anchors, cls_preds, bbox_preds = book_model(images)
    assert tuple(anchors.shape) == (1, 5444, 4)
    assert tuple(cls_preds.shape) == (2, 5444, 2)
    assert tuple(bbox_preds.shape) == (2, 21776)
    assert book_model.feature_maps == [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)]
    assert isinstance(book_model, TinySSD) and book_model.num_anchors == 5444
    assert "tiny_ssd" in list_models()


def test_anchors_are_multibox_prior_of_each_map(book_model):
    expected = np.concatenate([
        multibox_prior(tf.zeros([1, h, h, 1]), s, [1, 2, 0.5]).numpy()
        for h, s in zip((32, 16, 8, 4, 1), BOOK_SIZES)
    ], axis=1)
    np.testing.assert_array_equal(book_model.anchors.numpy(), expected)


def test_prediction_order_matches_anchor_order(book_model, images):
    # Head outputs (B, h, w, a*k) flattened NHWC: prediction (y*w + x)*a + j of map i must be the
    # head's channels j*k .. j*k+k-1 at pixel (y, x), and anchor (y*w + x)*a + j is centred on
    # ((x + 0.5)/w, (y + 0.5)/h). Checked on map 1 (16x16) at a few pixels.
    net = book_model.network
    heads = keras.Model(net.input, [net.get_layer("cls_1").output, net.get_layer("bbox_1").output])
    cls_head, bbox_head = (t.numpy() for t in heads(images))
    _, cls_preds, bbox_preds = book_model(images)
    anchors = book_model.anchors.numpy()[0]
    offset = 4 * 32 * 32  # anchors of map 0 come first
    for y, x, j in [(0, 0, 0), (3, 11, 2), (15, 15, 3), (7, 2, 1)]:
        a = offset + (y * 16 + x) * 4 + j
        np.testing.assert_allclose(cls_preds.numpy()[:, a, :], cls_head[:, y, x, j * 2:(j + 1) * 2], rtol=1e-6)
        np.testing.assert_allclose(bbox_preds.numpy()[:, 4 * a:4 * a + 4], bbox_head[:, y, x, j * 4:(j + 1) * 4],
                                   rtol=1e-6)
        centre = (anchors[a, :2] + anchors[a, 2:]) / 2
        np.testing.assert_allclose(centre, [(x + 0.5) / 16, (y + 0.5) / 16], atol=1e-6)


def test_metrics_are_the_books_class_err_and_bbox_mae():
    model = tiny_ssd(input_shape=(64, 64, 3), seed=0)
    # Anchor 0 predicted class 1 (right), anchor 1 predicted 1 (wrong, label 0), anchor 2 right:
    # class err 1/3. bbox: |(t - p) * m| = 1, 1, 0, 2 on the masked anchor, 0 elsewhere: 4 / 12.
    cls_preds = tf.constant([[[0.0, 3.0], [0.0, 1.0], [2.0, 0.0]]])
    cls_labels = tf.constant([[1, 0, 0]], tf.int64)
    bbox_preds = tf.constant([[0.0, 0, 0, 0] + [9.0] * 8])
    bbox_labels = tf.constant([[1.0, -1, 0, 2] + [0.0] * 8])
    masks = tf.constant([[1.0] * 4 + [0.0] * 8])
    logs = model._update_metrics(tf.constant([0.7]), cls_preds, bbox_preds, cls_labels, bbox_labels, masks)
    assert set(logs) == {"loss", "class err", "bbox mae"}
    np.testing.assert_allclose([logs["class err"], logs["bbox mae"], logs["loss"]], [1 / 3, 4 / 12, 0.7], rtol=1e-6)


def test_train_step_gradients_finite_with_empty_images(book_model, images):
    # Image 0 has a banana-sized box, image 1 only padding rows (no objects at all).
    labels = np.array([[[0, 0.3, 0.3, 0.55, 0.6], [-1, 0, 0, 0, 0]],
                       [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]], np.float32)
    for batch in (slice(0, 2), slice(1, 2)):  # mixed batch, and an all-empty batch
        with tf.GradientTape() as tape:
            per_image, extras = book_model._forward_loss(images[batch], labels[batch], training=True)
            loss = tf.reduce_mean(per_image)
        grads = tape.gradient(loss, book_model.trainable_variables)
        assert np.isfinite(loss.numpy())
        for var, grad in zip(book_model.trainable_variables, grads):
            assert grad is not None, var.path
            assert np.isfinite(grad.numpy()).all(), var.path
        if batch == slice(0, 2):
            # The class heads and the first convolution learn from every image.
            names = {v.path: np.abs(g.numpy()).sum() for v, g in zip(book_model.trainable_variables, grads)}
            assert all(v > 0 for k, v in names.items() if "cls_" in k or "blk0_down1_conv1" in k)
        else:
            # No objects: all-background targets, the box loss is 0 and box heads get no gradient.
            cls_labels = extras[2].numpy()
            assert (cls_labels == 0).all() and (extras[4].numpy() == 0).all()


def test_fit_reports_book_metrics_and_loss_decreases(tmp_path):
    # A handful of SGD steps (the book's lr 0.2, weight decay 5e-4) on 8 tiny generated scenes.
    from kcv.data.sources.bananas import load_bananas
    from kcv.data.synthetic.bananas import write_bananas

    root = write_bananas(str(tmp_path), num_train=8, num_val=0, image_size=64, seed=0)
    x, y = load_bananas(root, "train")
    model = tiny_ssd(input_shape=(64, 64, 3), seed=0)
    model.compile(optimizer=CoupledSGD(0.2, l2=5e-4))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    history = model.fit(ds, epochs=4, verbose=0).history
    assert set(history) == {"loss", "class err", "bbox mae"}
    assert all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    assert history["class err"][-1] < history["class err"][0]
    logs = model.evaluate(ds, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "class err", "bbox mae"} and np.isfinite(logs["loss"])


def test_detections_decode_the_outputs(book_model, images):
    outputs = book_model(images)
    rows = book_model.predict_detections(images)
    assert tuple(rows.shape) == (2, 5444, 6)
    np.testing.assert_allclose(rows.numpy(), outputs_to_detections(*outputs).numpy(), atol=1e-6)
    padded = book_model.detect(images, max_detections=7, score_threshold=0.01)
    assert padded["boxes"].shape == (2, 7, 4) and padded["classes"].dtype == tf.int64
    # The padded form is the first rows of the book's table that are detections (class >= 0).
    for b in range(2):
        keep = rows.numpy()[b]
        keep = keep[(keep[:, 0] >= 0) & (keep[:, 1] >= 0.01)][:7]
        n = int(padded["num_detections"][b])
        assert n == len(keep)
        np.testing.assert_allclose(padded["boxes"][b, :n], keep[:, 2:], atol=1e-6)
        np.testing.assert_allclose(padded["scores"][b, :n], keep[:, 1], atol=1e-6)
        assert (padded["classes"][b, n:].numpy() == -1).all()
    same = outputs_to_padded(*outputs, max_detections=7)
    np.testing.assert_array_equal(same["num_detections"], padded["num_detections"])
    # model.predict returns detect()'s dict (defaults: 100 rows, score >= 0.01), batch by batch.
    predicted = book_model.predict(images, batch_size=1, verbose=0)
    full = book_model.detect(images)
    assert predicted["boxes"].shape == (2, 100, 4)
    np.testing.assert_array_equal(predicted["num_detections"], full["num_detections"].numpy())
    np.testing.assert_allclose(predicted["scores"], full["scores"].numpy(), atol=1e-6)


def test_config_round_trip_and_keras_file(tmp_path):
    model = tiny_ssd(num_classes=3, input_shape=(64, 64, 3), seed=1)
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model.compile(optimizer=CoupledSGD(0.1))
    model.fit(x, np.tile([[[1, 0.1, 0.1, 0.6, 0.7]]], (2, 1, 1)).astype("float32"), epochs=1, verbose=0)
    clone = TinySSD.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [v.path for v in clone.weights] == [v.path for v in model.weights]
    path = str(tmp_path / "ssd.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TinySSD) and loaded.num_classes == 3
    assert isinstance(loaded.network.get_layer("blk0_down1_bn1"), FusedBatchNorm)  # torch BN semantics
    for a, b in zip(model(x), loaded(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    # Moving statistics were updated by training and survive the round trip.
    bn = model.network.get_layer("blk0_down1_bn1")
    assert not np.allclose(bn.moving_mean.numpy(), 0)
    np.testing.assert_allclose(loaded.network.get_layer("blk0_down1_bn1").moving_mean.numpy(), bn.moving_mean.numpy())


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="too small"):
        tiny_ssd(input_shape=(32, 32, 3))


@pytest.mark.large
def test_training_on_generated_scenes_reaches_map(tmp_path):
    """TinySSD trained on generated banana scenes reaches mAP@0.5 >= 0.8 on 100 held-out scenes,
    and the exported SavedModel finds the bananas in new full-size scenes sent as PNG bytes.

    Recipe: the book's 1000 training scenes, batch 32, but 128x128 input and Adam lr 1e-3 for 16
    epochs (512 steps). The book's 256x256 + plain SGD lr 0.2 is far too slow for a CPU budget
    (measured: mAP@0.5 ~0.1 after 480 steps; see BUILD.md, tiny_ssd_bananas). KCV_SSD_EPOCHS / KCV_SSD_SIZE /
    KCV_SSD_OPT=book override. Prints the timings.
    """
    from kcv.data.sources.bananas import load_bananas
    from kcv.data.synthetic.bananas import render_scene, write_bananas
    from kcv.data.images import encode_png
    from kcv.metrics import coco_map, from_labels, from_padded, mean_average_precision
    from kcv.serving.detector import export_detector

    epochs = int(os.environ.get("KCV_SSD_EPOCHS", "16"))
    size = int(os.environ.get("KCV_SSD_SIZE", "128"))
    book = os.environ.get("KCV_SSD_OPT", "adam") == "book"
    start = time.time()
    root = write_bananas(str(tmp_path / "data"), num_train=1000, num_val=100, image_size=size, seed=0)
    x, y = load_bananas(root, "train")
    xv, yv = load_bananas(root, "val")
    generated = time.time() - start
    model = tiny_ssd(input_shape=(size, size, 3), seed=0)
    model.compile(optimizer=CoupledSGD(0.2, l2=5e-4) if book else keras.optimizers.Adam(1e-3))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32)
    history = model.fit(ds, epochs=epochs, verbose=0).history
    trained = time.time() - start - generated
    detect = tf.function(lambda im: model.detect(im), input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
    dets = []
    for i in range(0, len(xv), 25):
        dets += from_padded(**detect(tf.constant(xv[i:i + 25])))
    map50 = mean_average_precision(dets, from_labels(yv))
    print(f"\ntiny_ssd {size}px on {len(x)} scenes, {epochs} epochs: data {generated:.0f}s, train {trained:.0f}s, "
          f"last epoch {({k: round(v[-1], 5) for k, v in history.items()})}, mAP@0.5 {map50:.3f}, "
          f"COCO mAP {coco_map(dets, from_labels(yv)):.3f}")
    assert history["loss"][-1] < history["loss"][0] / 2
    assert map50 >= 0.8

    # The exported detector on 20 new 256x256 scenes (resized to the model's size in the graph):
    # its best box overlaps the banana with IoU >= 0.5 in most of them, in original pixels.
    path = export_detector(model, str(tmp_path / "export"), image_size=(size, size))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    scenes = [render_scene(np.random.default_rng([99, i]), 256, 1) for i in range(20)]
    out = serve(image_bytes=tf.constant([encode_png(im) for im, _ in scenes]))
    hits = 0
    for i, (_, box) in enumerate(scenes):
        best = out["boxes"][i, 0].numpy()
        inter = np.prod(np.clip(np.minimum(best[2:], box[0, 2:]) - np.maximum(best[:2], box[0, :2]), 0, None))
        union = np.prod(best[2:] - best[:2]) + np.prod(box[0, 2:] - box[0, :2]) - inter
        hits += inter / union >= 0.5
    print(f"exported detector: best box IoU >= 0.5 on {hits}/20 new scenes")
    assert hits >= 15
