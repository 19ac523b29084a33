"""Warm-up records: every export carries one PredictionLog per signature, and each replays.

The records are decoded here from the wire format by hand (field numbers of tensorflow/serving's
prediction_log.proto, predict.proto, model.proto), not with kcv's own message classes, so a wrong
field number in kcv.serving.warmup would show.
"""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

import kcv.models.dcgan as dc
import kcv.models.gan as gan_lib
from kcv.models.tiny_ssd import tiny_ssd
from kcv.serving.classifier import export_classifier
from kcv.serving.detector import OUTPUT_KEYS, export_detector
from kcv.serving.generator import export_generator
from kcv.serving.warmup import WARMUP_DIR, WARMUP_FILE, example_input, messages

CLASSIFIER_KEYS = {"probabilities", "classes", "class_names"}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """A message's (field number, value) pairs: bytes for length-delimited fields, ints for varints."""
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        else:
            raise AssertionError(f"unexpected wire type {wire} for field {number}")
        out.append((number, value))
    return out


def _decode(record: bytes) -> tuple[str, str, dict[str, np.ndarray]]:
    """PredictionLog bytes -> (model name, signature name, {input: array})."""
    top = _fields(record)
    assert [n for n, _ in top] == [6]  # PredictionLog.predict_log = 6, nothing else
    log = _fields(top[0][1])
    assert [n for n, _ in log] == [1]  # PredictLog.request = 1
    request = _fields(log[0][1])
    assert {n for n, _ in request} <= {1, 2}  # PredictRequest.model_spec = 1, inputs = 2
    specs = [v for n, v in request if n == 1]
    assert len(specs) == 1
    spec = dict(_fields(specs[0]))
    assert set(spec) <= {1, 3}  # ModelSpec.name = 1 (left empty), signature_name = 3
    inputs = {}
    for entry in (v for n, v in request if n == 2):  # map entries: key = 1, value = 2
        kv = dict(_fields(entry))
        inputs[kv[1].decode()] = tf.make_ndarray(tensor_pb2.TensorProto.FromString(kv[2]))
    return spec.get(1, b"").decode(), spec[3].decode(), inputs


def _classifier(path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(keras.layers.Rescaling(1 / 255.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    export_classifier(model, path, ["cat", "dog", "emu"], (8, 8))
    return {"serving_default": CLASSIFIER_KEYS, "serving_images": CLASSIFIER_KEYS}


def _detector(path):
    export_detector(tiny_ssd(num_classes=2, input_shape=(64, 64, 3), seed=3), path, image_size=(64, 64),
                    max_detections=5)
    return {"serving_default": set(OUTPUT_KEYS), "serving_images": set(OUTPUT_KEYS)}


def _image_generator(path):
    export_generator(dc.dcgan_generator(latent_dim=8, image_size=16, base_filters=4), path, latent_dim=8)
    return {"serving_default": {"images"}, "sample": {"images", "noise"}}


def _points_generator(path):
    export_generator(gan_lib.toy_generator(seed=0), path, latent_dim=2, output="points")
    return {"serving_default": {"samples"}, "sample": {"samples", "noise"}}


@pytest.mark.parametrize("export", [_classifier, _detector, _image_generator, _points_generator])
def test_every_signature_has_one_warmup_request_that_replays(tmp_path, export):
    path = str(tmp_path / "model")
    keys = export(path)
    records = [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(path, WARMUP_DIR, WARMUP_FILE))]
    loaded = tf.saved_model.load(path)
    decoded = [_decode(r) for r in records]
    assert sorted(s for _, s, _ in decoded) == sorted(loaded.signatures) == sorted(keys)  # one per signature
    for record, (model_name, signature, inputs) in zip(records, decoded):
        assert model_name == ""  # TF Serving fills in the name of the model it loads
        fn = loaded.signatures[signature]
        specs = fn.structured_input_signature[1]
        assert sorted(inputs) == sorted(specs)
        for name, value in inputs.items():
            assert value.shape[0] == 1 and specs[name].shape.is_compatible_with(value.shape)
        out = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
        assert set(out) == keys[signature]
        assert all(v.shape[0] == 1 for v in out.values())
        # kcv's message classes read the same record the same way
        log = messages()["PredictionLog"].FromString(record)
        assert log.predict_log.request.model_spec.signature_name == signature
        for name, value in inputs.items():
            got = tf.make_ndarray(tensor_pb2.TensorProto.FromString(
                log.predict_log.request.inputs[name].SerializeToString()))
            np.testing.assert_array_equal(got, value)


def test_example_inputs():
    png = example_input("image_bytes", tf.TensorSpec([None], tf.string))
    assert png.shape == (1,) and tf.io.decode_png(png[0]).shape == (8, 8, 3)
    assert example_input("tag", tf.TensorSpec([None], tf.string)).tolist() == [b""]
    seed = example_input("seed", tf.TensorSpec([None], tf.int64))
    assert seed.dtype == np.int64 and seed.tolist() == [0]
    images = example_input("images", tf.TensorSpec([None, 8, 8, 3], tf.uint8))
    assert images.dtype == np.uint8 and images.shape == (1, 8, 8, 3) and not images.any()
    noise = example_input("noise", tf.TensorSpec([None, 100], tf.float32))
    assert noise.dtype == np.float32 and noise.shape == (1, 100) and not noise.any()
