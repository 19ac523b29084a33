"""The detection and GAN input builders of kcv/data/input.py (classification: pipeline_test.py)."""
import numpy as np
import pytest

from kcv.data.images import encode_png
from kcv.data.input import detection_dataset, gan_image_dataset, object_counts, points_dataset, read_points
from kcv.data.schema import make_example
from kcv.data.tfrecords import write_shards
from kcv.ops.boxes import bounding_boxes_to_rows, rows_to_bounding_boxes


def _image(value, size=(16, 16)):
    return encode_png(np.full((*size, 3), value, np.uint8))


def test_detection_batches_pad_label_rows_with_class_minus_one(tmp_path):
    split = str(tmp_path / "Split-eval")
    examples = [make_example("a", _image(10), boxes=[[0.1, 0.2, 0.5, 0.6]], box_labels=[0]),
                make_example("b", _image(200, (32, 24)), boxes=[[0, 0, 1, 1], [0.2, 0.2, 0.4, 0.4]], box_labels=[0, 1])]
    write_shards(iter(examples), split, 1)
    assert object_counts(split) == [1, 2]
    (images, boxes), = list(detection_dataset(split, batch_size=2, training=False, image_size=(8, 8), max_objects=3))
    assert images.shape == (2, 8, 8, 3) and images.dtype == "float32"
    assert float(images[0].numpy().max()) == 10.0 and float(images[1].numpy().min()) == 200.0  # 0-255, resized
    # keras-cv's bounding-box dict, rel_xyxy, padding -1 in boxes and classes
    assert sorted(boxes) == ["boxes", "classes"] and boxes["boxes"].shape == (2, 3, 4)
    np.testing.assert_allclose(boxes["classes"].numpy(), [[0, -1, -1], [0, 1, -1]])
    np.testing.assert_allclose(boxes["boxes"][0].numpy(), [[0.1, 0.2, 0.5, 0.6], [-1, -1, -1, -1], [-1, -1, -1, -1]])
    labels = bounding_boxes_to_rows(boxes)  # the book's rows, as multibox_target takes them
    np.testing.assert_allclose(labels[0].numpy(), [[0, 0.1, 0.2, 0.5, 0.6], [-1, -1, -1, -1, -1], [-1, -1, -1, -1, -1]])
    np.testing.assert_allclose(labels[1, :2].numpy(), [[0, 0, 0, 1, 1], [1, 0.2, 0.2, 0.4, 0.4]])


def test_detection_training_drops_the_last_partial_batch_and_is_seeded(tmp_path):
    split = str(tmp_path / "Split-train")
    write_shards(iter([make_example(str(i), _image(i), boxes=[[0, 0, 1, 1]], box_labels=[0]) for i in range(5)]),
                 split, 1)

    def firsts(seed):
        ds = detection_dataset(split, batch_size=2, training=True, image_size=(4, 4), max_objects=1, seed=seed)
        return [float(x[0, 0, 0, 0]) for x, _ in ds]

    assert len(firsts(0)) == 2 and firsts(0) == firsts(0)  # 5 // 2 full batches; same seed, same order


def test_points_round_trip_and_batches(tmp_path):
    split = str(tmp_path / "Split-train")
    points = np.arange(12, dtype=np.float32).reshape(6, 2)
    write_shards(iter([make_example(str(i), b"", features=p.tolist()) for i, p in enumerate(points)]), split, 2)
    assert sorted(map(tuple, read_points(split))) == sorted(map(tuple, points))
    batches = list(points_dataset(split, batch_size=4, training=True, seed=1))
    assert [b.shape for b in batches] == [(4, 2)]  # training drops the remainder of 6
    assert sum(b.shape[0] for b in points_dataset(split, batch_size=4, training=False)) == 6
    with pytest.raises(FileNotFoundError, match="no .tfrecord.gz files in"):
        read_points(str(tmp_path / "missing"))


def test_gan_images_are_scaled_to_minus_one_one(tmp_path):
    split = str(tmp_path / "Split-train")
    write_shards(iter([make_example("black", _image(0)), make_example("white", _image(255))]), split, 1)
    (batch,) = list(gan_image_dataset(split, batch_size=2, training=False, image_size=(8, 8)))
    assert batch.shape == (2, 8, 8, 3)
    assert sorted(float(v) for v in batch[:, 0, 0, 0].numpy()) == [-1.0, 1.0]  # x / 127.5 - 1


def test_rows_and_keras_cv_dicts_round_trip_bit_identically():
    rows = np.array([[[0, 0.1, 0.2, 0.5, 0.6], [2, 0.3, 0.1, 0.9, 0.7], [-1, -1, -1, -1, -1]]], np.float32)
    d = rows_to_bounding_boxes(rows)
    np.testing.assert_array_equal(d["classes"].numpy(), [[0, 2, -1]])
    np.testing.assert_array_equal(bounding_boxes_to_rows(d).numpy(), rows)


def _scenes(tmp_path, n=8):
    split = str(tmp_path / "Split-train")
    rng = np.random.default_rng(0)
    examples = [make_example(str(i), encode_png(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)),
                             boxes=[[0.1, 0.2, 0.5, 0.6], [0.55, 0.5, 0.9, 0.95]], box_labels=[0, 0]) for i in range(n)]
    write_shards(iter(examples), split, 1)
    return split


def _augmented(split, seed=1, skip=0):
    ds = detection_dataset(split, batch_size=4, training=True, image_size=(32, 32), max_objects=3, seed=seed,
                           augment="boxes").repeat(2).skip(skip)
    return [(x.numpy(), b["boxes"].numpy(), b["classes"].numpy()) for x, b in ds]


def test_box_augmentation_moves_boxes_with_the_image_and_replays(tmp_path):
    split = _scenes(tmp_path)
    plain = [(x.numpy(), b) for x, b in detection_dataset(split, batch_size=4, training=True, image_size=(32, 32),
                                                           max_objects=3, seed=1)]
    first = _augmented(split)
    assert len(first) == 4  # 2 batches x 2 passes
    images, boxes, classes = first[0]
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
    assert boxes.shape == (4, 3, 4) and classes.shape == (4, 3)
    assert 0.0 <= images.min() and images.max() <= 255.0
    valid = classes >= 0
    assert valid.any() and np.all(boxes[~valid] == -1) and np.all(classes[~valid] == -1)
    b = boxes[valid]
    assert np.all(b >= 0) and np.all(b <= 1) and np.all(b[:, 2] >= b[:, 0]) and np.all(b[:, 3] >= b[:, 1])
    # The boxes moved: not all equal to the stored ones (some flipped / rescaled).
    assert not np.allclose(b[:, :2], [0.1, 0.2]) and not np.array_equal(images, plain[0][0])
    # Same seed, a second pipeline: identical; skipping one batch replays the rest exactly (resume).
    again = _augmented(split)
    for a, c in zip(first, again):
        for u, v in zip(a, c):
            np.testing.assert_array_equal(u, v)
    for a, c in zip(first[1:], _augmented(split, skip=1)):
        for u, v in zip(a, c):
            np.testing.assert_array_equal(u, v)
    other = _augmented(split, seed=2)
    assert not np.array_equal(first[0][1], other[0][1]) or not np.array_equal(first[0][0], other[0][0])


def test_box_augmentation_is_the_same_in_another_process(tmp_path):
    import subprocess
    import sys
    import textwrap

    split = _scenes(tmp_path)
    code = textwrap.dedent(f"""
        import hashlib
        from kcv.data.input import detection_dataset
        ds = detection_dataset({split!r}, batch_size=4, training=True, image_size=(32, 32), max_objects=3, seed=1,
                               augment="boxes").repeat(2)
        h = hashlib.sha256()
        for x, b in ds:
            h.update(x.numpy().tobytes()); h.update(b["boxes"].numpy().tobytes()); h.update(b["classes"].numpy().tobytes())
        print(h.hexdigest())
    """)
    # Two fresh processes, not this one: tf.data's op-level shuffle seeds combine with TensorFlow's
    # global seed, which earlier tests in this process may have set (keras.utils.set_random_seed).
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
               .stdout.strip().splitlines()[-1] for _ in range(2)}
    assert len(digests) == 1
