"""The detection and GAN input builders of kcv/data/input.py (classification: pipeline_test.py)."""
import numpy as np
import pytest

from kcv.data.images import encode_png
from kcv.data.input import detection_dataset, gan_image_dataset, object_counts, points_dataset, read_points
from kcv.data.schema import make_example
from kcv.data.tfrecords import write_shards


def _image(value, size=(16, 16)):
    return encode_png(np.full((*size, 3), value, np.uint8))


def test_detection_batches_pad_label_rows_with_class_minus_one(tmp_path):
    split = str(tmp_path / "Split-eval")
    examples = [make_example("a", _image(10), boxes=[[0.1, 0.2, 0.5, 0.6]], box_labels=[0]),
                make_example("b", _image(200, (32, 24)), boxes=[[0, 0, 1, 1], [0.2, 0.2, 0.4, 0.4]], box_labels=[0, 1])]
    write_shards(iter(examples), split, 1)
    assert object_counts(split) == [1, 2]
    (images, labels), = list(detection_dataset(split, batch_size=2, training=False, image_size=(8, 8), max_objects=3))
    assert images.shape == (2, 8, 8, 3) and images.dtype == "float32"
    assert float(images[0].numpy().max()) == 10.0 and float(images[1].numpy().min()) == 200.0  # 0-255, resized
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
