"""Example schema, TFRecord shards, the per-class split, augmentation and the input function."""
import numpy as np
import pytest
import tensorflow as tf

from kcv.data import augment
from kcv.data.errors import DataError
from kcv.data.images import encode_png
from kcv.data.input import classification_dataset
from kcv.data.preprocess import resize_for_model
from kcv.data.schema import decode_image, make_example, parse_example
from kcv.data.split import split_per_class, valid_per_class
from kcv.data.synthetic import shapes
from kcv.data.tfrecords import list_shards, read_records, write_shards


def _write(tmp_path, n=50, size=32, shards=3):
    images, labels = shapes.make_images(n, seed=3, size=size)
    examples = (make_example(str(i), encode_png(images[i]), int(labels[i]), shapes.SHAPE_CLASSES[labels[i]])
                for i in range(n))
    out = str(tmp_path / "Split-train")
    assert write_shards(examples, out, num_shards=shards) == n
    return out, images, labels


def test_example_round_trip_with_reserved_detection_fields():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    ex = make_example("42", encode_png(image), 3, "ring", boxes=[[0.1, 0.2, 0.5, 0.6]], box_labels=[1])
    parsed = parse_example(ex.SerializeToString())
    assert parsed["id"].numpy() == b"42" and int(parsed["label"]) == 3 and parsed["label/text"].numpy() == b"ring"
    np.testing.assert_array_equal(decode_image(parsed["image/encoded"]).numpy(), image)
    np.testing.assert_allclose(parsed["objects/bbox"].numpy(), [[0.1, 0.2, 0.5, 0.6]])
    assert parsed["objects/label"].numpy().tolist() == [1]
    empty = parse_example(make_example("1", encode_png(image)).SerializeToString())
    assert empty["objects/bbox"].shape == (0, 4) and int(empty["label"]) == -1


def test_grey_decode_of_rgb_storage():
    grey = np.full((3, 3, 3), 77, np.uint8)
    assert (decode_image(tf.constant(encode_png(grey)), channels=1).numpy() == 77).all()


def test_sharded_gzip_records_hold_every_example(tmp_path):
    out, _, _ = _write(tmp_path, n=50, shards=3)
    files = list_shards(out)
    assert [f.rsplit("/", 1)[1] for f in files] == [f"data-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    ids = sorted(int(parse_example(r)["id"].numpy()) for r in read_records(out))
    assert ids == list(range(50))


def test_valid_per_class_follows_the_book():
    # smallest class has 25 -> floor(25 * 0.1) = 2; a class of 5 -> max(1, floor(0.5)) = 1
    assert valid_per_class(["a"] * 25 + ["b"] * 40, 0.1) == 2
    assert valid_per_class(["a"] * 5 + ["b"] * 40, 0.1) == 1
    with pytest.raises(DataError, match="fewer than 2 examples"):
        valid_per_class(["a"] + ["b"] * 40, 0.1)
    with pytest.raises(DataError, match="valid_ratio"):
        valid_per_class(["a"] * 5, 1.5)


def test_split_per_class_is_balanced_disjoint_and_seeded():
    labels = ["a"] * 30 + ["b"] * 50 + ["c"] * 20
    ids = [str(i) for i in range(100)]
    train, valid = split_per_class(ids, labels, 0.1, seed=0)
    assert sorted(train + valid) == list(range(100)) and not set(train) & set(valid)
    assert sorted(labels[i] for i in valid) == ["a", "a", "b", "b", "c", "c"]  # floor(20*0.1)=2 each
    assert split_per_class(ids, labels, 0.1, seed=0) == (train, valid)
    rev_train, rev_valid = split_per_class(ids[::-1], labels[::-1], 0.1, seed=0)
    assert sorted(ids[::-1][i] for i in rev_valid) == sorted(ids[i] for i in valid)


def test_cifar_augment_keeps_shape_range_and_is_seeded():
    x = tf.random.uniform((8, 32, 32, 3), 0, 255, seed=1)
    seed = tf.constant([4, 2], tf.int64)
    a = augment.cifar_augment(x, seed)
    assert a.shape == x.shape
    assert float(tf.reduce_min(a)) >= 0.0 and float(tf.reduce_max(a)) <= 255.0
    np.testing.assert_array_equal(a.numpy(), augment.cifar_augment(x, seed).numpy())
    assert not np.array_equal(a.numpy(), augment.cifar_augment(x, seed + 1).numpy())


def test_translate_is_a_reflected_shift_of_at_most_two_pixels_and_is_seeded():
    x = tf.random.uniform((64, 8, 9, 3), 0, 255, seed=3)
    seed = tf.constant([5, 1], tf.int64)
    out = augment.random_translate(x, seed).numpy()
    assert out.shape == x.shape
    padded = np.pad(x.numpy(), [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")  # numpy's reflect = TF's REFLECT
    shifts = set()
    for i in range(len(out)):  # every output is one 8x9 window of its reflect-padded input
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if np.array_equal(out[i], padded[i, dy:dy + 8, dx:dx + 9])]
        assert hits, f"image {i} is not a shifted window"
        shifts.add(hits[0])
    assert len(shifts) > 10  # the 25 offsets are all drawn, not one
    np.testing.assert_array_equal(out, augment.random_translate(x, seed).numpy())
    assert not np.array_equal(out, augment.random_translate(x, seed + 1).numpy())
    both = augment.augment_batch("translate", x, seed).numpy()  # + the flip
    mirrored = [np.array_equal(both[i], out[i][:, ::-1]) for i in range(len(out))]
    assert all(m or np.array_equal(both[i], out[i]) for i, m in enumerate(mirrored)) and 10 < sum(mirrored) < 54


def test_full_crop_is_identity_mirrored_crop_flips_and_edges_clamp():
    x = tf.random.uniform((1, 32, 32, 3), 0, 255, seed=2)
    zero, one = tf.zeros(1), tf.ones(1)
    np.testing.assert_allclose(augment.crop_resize(x, zero, zero, one, one, (32, 32)).numpy(), x.numpy(), atol=5e-3)
    flipped = augment.crop_resize(x, zero, one, one, zero, (32, 32))
    np.testing.assert_allclose(flipped.numpy(), x.numpy()[:, :, ::-1], atol=5e-3)
    # 2x downsampling of a ramp 0..63: output centres sit between source pixels 2i and 2i+1
    ramp = tf.reshape(tf.tile(tf.range(64.0), [2]), (1, 2, 64, 1))
    half = augment.crop_resize(ramp, zero, zero, one, one, (2, 32)).numpy()[0, 0, :3, 0]
    np.testing.assert_allclose(half, [0.5, 2.5, 4.5], atol=1e-4)
    # 2x upsampling: the first output centre (-0.25 px) clamps to the edge value, never to 0
    up = augment.crop_resize(ramp + 10.0, zero, zero, one, one, (4, 128)).numpy()[0, 0, :2, 0]
    np.testing.assert_allclose(up, [10.0, 10.25], atol=1e-4)


def test_crop_area_stays_in_the_books_range():
    # A constant-gradient image: x-coordinate value. A crop of side s spans s*32 values of x.
    ramp = tf.tile(tf.reshape(tf.range(32, dtype=tf.float32), (1, 1, 32, 1)), (64, 32, 1, 3))
    out = augment.cifar_augment(ramp, tf.constant([1, 1], tf.int64)).numpy()[:, 0, :, 0]
    span = np.abs(out[:, -1] - out[:, 0]) * 32 / 31  # pixels covered by the crop (centres are 31/32 of it)
    assert span.min() >= 0.8 * 32 - 1 and span.max() <= 32 + 1e-3  # area 0.64-1 -> side 0.8-1


def test_random_resized_crop_and_jitter_shapes():
    seed = tf.constant([3, 9], tf.int64)
    img = tf.random.uniform((60, 90, 3), 0, 255, seed=1)
    out = augment.random_resized_crop(img, (24, 24), seed)
    assert out.shape == (24, 24, 3)
    jit = augment.color_jitter(tf.stack([out, out]), seed)
    assert jit.shape == (2, 24, 24, 3) and float(tf.reduce_max(jit)) <= 255.0


def test_resize_for_model_modes():
    img = tf.zeros((300, 400, 3), tf.uint8)
    assert resize_for_model(img, (224, 224), "center_crop").shape == (224, 224, 3)
    assert resize_for_model(img, (32, 32), "stretch").shape == (32, 32, 3)
    small = tf.constant(np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3))
    np.testing.assert_array_equal(resize_for_model(small, (32, 32)).numpy(), small.numpy())


def test_input_function_batches_training_and_eval(tmp_path):
    out, images, labels = _write(tmp_path, n=50)
    train = classification_dataset(out, batch_size=16, training=True, image_size=(32, 32), augment="cifar", seed=1)
    batches = list(train)
    assert len(batches) == 3  # 50 // 16, the last partial batch dropped as the book does
    x, y = batches[0]
    assert x.shape == (16, 32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    ev = classification_dataset(out, batch_size=16, training=False, image_size=(32, 32), with_ids=True)
    got = {}
    for x, y, ids in ev:
        for xi, yi, i in zip(x.numpy(), y.numpy(), ids.numpy()):
            got[int(i)] = (xi, yi)
    assert len(got) == 50
    np.testing.assert_array_equal(got[7][0], images[7].astype(np.float32))  # eval: pixels untouched
    assert got[7][1] == labels[7]
    grey = classification_dataset(out, batch_size=10, training=False, image_size=(16, 16), channels=1)
    assert next(iter(grey))[0].shape == (10, 16, 16, 1)


def test_embedded_shapes_are_deterministic_and_not_colour_coded():
    a, la = shapes.make_images(200, seed=5)
    b, lb = shapes.make_images(200, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert np.bincount(la).tolist() == [20] * 10
    images, labels = shapes.make_images(1000, seed=0)
    mean = images.reshape(1000, -1, 3).mean(axis=1)
    centroids = np.stack([mean[:800][labels[:800] == c].mean(axis=0) for c in range(10)])
    pred = np.argmin(((mean[800:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == labels[800:]).mean() < 0.25  # chance is 0.10; a small CNN gets far more


def test_sample_per_class_is_even_seeded_and_capped_by_small_classes():
    from collections import Counter

    from kcv.data.split import sample_per_class

    ids = [f"{i:03d}" for i in range(100)]
    labels = ["a"] * 50 + ["b"] * 45 + ["c"] * 5
    assert sample_per_class(ids, labels, 100) == list(range(100))
    for n in (7, 31, 40, 90):
        chosen = sample_per_class(ids, labels, n, seed=3)
        counts = Counter(labels[i] for i in chosen)
        assert len(chosen) == len(set(chosen)) == n and chosen == sorted(chosen)
        big = [counts[c] for c in "ab"]
        everyone = big + [counts["c"]]
        assert max(big) - min(big) <= 1
        assert max(everyone) - min(everyone) <= 1 or counts["c"] == 5  # c gives what it has, the others share
    assert sample_per_class(ids, labels, 31, seed=1) == sample_per_class(ids, labels, 31, seed=1)
    assert sample_per_class(ids, labels, 31, seed=1) != sample_per_class(ids, labels, 31, seed=2)
    # the listing order of the source does not matter, only the ids
    order = list(range(100))[::-1]
    reversed_pick = sample_per_class([ids[i] for i in order], [labels[i] for i in order], 31, seed=1)
    assert sorted(order[i] for i in reversed_pick) == sample_per_class(ids, labels, 31, seed=1)
    with pytest.raises(DataError, match="asked for 101 labelled examples, the data has 100"):
        sample_per_class(ids, labels, 101)
