"""call_rest answers as TF Serving's REST predict API documents it, on the documentation's own bodies.

The bodies below are the examples of the "RESTful API" page (Request format / Response format /
Encoding binary values / Example), answered by a tiny tf.Module SavedModel whose signatures take
the inputs the examples name; then a real kcv classifier export on serving_default.
"""
import base64
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.data.images import encode_png
from kcv.serving.classifier import export_classifier
from kcv.serving.rest import call_rest, instances_to_inputs

# The page's row-format example with three named inputs (its second "signal" has a stray "]").
ROW_BODY = {"instances": [
    {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
    {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
]}
# "Columnar representation of the previous example".
COLUMNAR_BODY = {"inputs": {
    "tag": ["foo", "bar"],
    "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
    "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]],
}}
F32 = tf.float32


class _Toy(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="tag"),
                                  tf.TensorSpec([None, 5], F32, name="signal"),
                                  tf.TensorSpec([None, 2, 2], F32, name="sensor")])
    def named(self, tag, signal, sensor):
        return {"tag": tf.strings.upper(tag), "signal_sum": tf.reduce_sum(signal, 1),
                "sensor_t": tf.transpose(sensor, [0, 2, 1])}

    @tf.function(input_signature=[tf.TensorSpec([None], F32, name="x")])
    def half_plus_three(self, x):  # the page's end-to-end example model
        return {"y": 0.5 * x + 3.0}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="word")])
    def lengths(self, word):
        return {"length": tf.strings.length(word)}

    @tf.function(input_signature=[tf.TensorSpec([None, 1, 2], F32, name="pair")])
    def pair_sums(self, pair):
        return {"sum": tf.reduce_sum(pair, [1, 2])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image"),
                                  tf.TensorSpec([None], tf.string, name="caption")])
    def echo(self, image, caption):
        return {"image_bytes": image, "image": image, "caption": caption, "size": tf.strings.length(image)}

    @tf.function(input_signature=[tf.TensorSpec([None], F32, name="a"), tf.TensorSpec([None], F32, name="b")])
    def totals(self, a, b):  # a and b need not share the 0-th dimension; the output has none
        return {"total": tf.reduce_sum(a) + tf.reduce_sum(b), "count": tf.size(a) + tf.size(b)}

    @tf.function(input_signature=[tf.TensorSpec([None], F32, name="x")])
    def positive(self, x):
        with tf.control_dependencies([tf.debugging.assert_positive(x, message="x must be > 0")]):
            return {"log": tf.math.log(x)}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    m = _Toy()
    path = str(tmp_path_factory.mktemp("toy") / "model")
    names = ["half_plus_three", "lengths", "pair_sums", "echo", "totals", "positive"]
    signatures = {"serving_default": m.named, **{n: getattr(m, n) for n in names}}
    tf.saved_model.save(m, path, signatures=signatures)
    return tf.saved_model.load(path)


def _rest(loaded, body):
    """call_rest on the body as it travels (JSON text both ways, NaN tokens allowed as TF Serving does)."""
    answer = call_rest(loaded, json.loads(json.dumps(body)))
    return json.loads(json.dumps(answer))


def test_row_format_with_named_inputs_answers_a_list_of_objects(toy):
    answer = _rest(toy, ROW_BODY)  # no signature_name: serving_default
    assert answer == {"predictions": [
        {"tag": "FOO", "signal_sum": 15.0, "sensor_t": [[1.0, 3.0], [2.0, 4.0]]},
        {"tag": "BAR", "signal_sum": 15.0, "sensor_t": [[4.0, 6.0], [5.0, 8.0]]},
    ]}
    assert _rest(toy, {"signature_name": "serving_default", **ROW_BODY}) == answer


def test_columnar_format_answers_an_object_of_whole_tensors(toy):
    answer = _rest(toy, COLUMNAR_BODY)
    assert answer == {"outputs": {"tag": ["FOO", "BAR"], "signal_sum": [15.0, 15.0],
                                  "sensor_t": [[[1.0, 3.0], [2.0, 4.0]], [[4.0, 6.0], [5.0, 8.0]]]}}
    rows = _rest(toy, ROW_BODY)["predictions"]
    assert [{k: v[i] for k, v in answer["outputs"].items()} for i in range(2)] == rows  # same numbers


def test_single_output_omits_its_name(toy):
    # The page's end-to-end example: curl -d '{"instances": [1.0,2.0,5.0]}' .../half_plus_three:predict
    assert _rest(toy, {"signature_name": "half_plus_three", "instances": [1.0, 2.0, 5.0]}) == {
        "predictions": [3.5, 4.0, 5.5]}
    assert _rest(toy, {"signature_name": "half_plus_three", "inputs": [1.0, 2.0, 5.0]}) == {
        "outputs": [3.5, 4.0, 5.5]}  # a bare columnar value for the single input, a bare answer
    assert _rest(toy, {"signature_name": "half_plus_three", "inputs": {"x": [1.0]}}) == {"outputs": [3.5]}


def test_single_input_instances_are_bare_values(toy):
    # "List of 3 scalar tensors." and "List of 2 tensors each of [1, 2] shape".
    assert _rest(toy, {"signature_name": "lengths", "instances": ["foo", "bar", "baz"]}) == {
        "predictions": [3, 3, 3]}
    assert _rest(toy, {"signature_name": "pair_sums", "instances": [[[1, 2]], [[3, 4]]]}) == {
        "predictions": [3.0, 7.0]}
    assert _rest(toy, {"signature_name": "pair_sums", "instances": [{"pair": [[1, 2]]}]}) == {"predictions": [3.0]}


def test_binary_values_travel_as_b64(toy):
    # The page's "Encoding binary values" instances: b64 inputs are decoded whatever the input's
    # name; only string outputs named *_bytes go back as {"b64": ...}, the others as UTF-8 text.
    body = {"signature_name": "echo", "instances": [
        {"image": {"b64": "aW1hZ2UgYnl0ZXM="}, "caption": "seaside"},
        {"image": {"b64": "YXdlc29tZSBpbWFnZSBieXRlcw=="}, "caption": "mountains"},
    ]}
    assert _rest(toy, body) == {"predictions": [
        {"image_bytes": {"b64": "aW1hZ2UgYnl0ZXM="}, "image": "image bytes", "caption": "seaside", "size": 11},
        {"image_bytes": {"b64": "YXdlc29tZSBpbWFnZSBieXRlcw=="}, "image": "awesome image bytes",
         "caption": "mountains", "size": 19},
    ]}
    columnar = _rest(toy, {"signature_name": "echo", "inputs": {"image": [{"b64": "aW1hZ2UgYnl0ZXM="}],
                                                                "caption": ["seaside"]}})
    assert columnar["outputs"]["image_bytes"] == [{"b64": "aW1hZ2UgYnl0ZXM="}]
    raw = base64.b64decode("YXdlc29tZSBpbWFnZSBieXRlcw==")
    assert instances_to_inputs(body, ["caption", "image"])["image"][1] == raw


def test_columnar_inputs_need_not_share_the_batch(toy):
    body = {"signature_name": "totals", "inputs": {"a": [1.0, 2.0, 3.0], "b": [10.0]}}
    assert _rest(toy, body) == {"outputs": {"total": 16.0, "count": 4}}
    # The same outputs cannot be split into rows: TF Serving answers an error, so does call_rest.
    rows = _rest(toy, {"signature_name": "totals", "instances": [{"a": 1.0, "b": 2.0}]})
    assert set(rows) == {"error"} and "columnar" in rows["error"]


@pytest.mark.parametrize("body, words", [
    ({"signature_name": "nope", **ROW_BODY}, "no signature 'nope'"),
    ({"instances": [{"tag": "foo", "signal": [1, 2, 3, 4, 5]}]}, "lacks inputs ['sensor']"),
    ({"inputs": {"tag": ["foo"], "signal": [[1, 2, 3, 4, 5]]}}, "lacks inputs ['sensor']"),
    ({"instances": [{**ROW_BODY["instances"][0], "extra": 1}]}, "unknown inputs ['extra']"),
    ({"instances": [ROW_BODY["instances"][0], {**ROW_BODY["instances"][1], "signal": [3, 4, 1, 2]}]},
     "non-rectangular"),  # ragged instances
    ({"signature_name": "pair_sums", "instances": [[[1, 2]], [[3, 4, 5]]]}, "non-rectangular"),
    ({"instances": [[1, 2, 3, 4, 5]]}, "bare value"),
    ({"instances": []}, "non-empty"),
    ({**ROW_BODY, **COLUMNAR_BODY}, "exactly one of"),
    ({"signature_name": "half_plus_three"}, "exactly one of"),
    ({"signature_name": "half_plus_three", "instances": [[1.0]]}, "does not fit"),
    ({"signature_name": "half_plus_three", "instances": ["one"]}, "float32"),
    ({"signature_name": "echo", "instances": [{"image": {"b64": "not base64!"}, "caption": "x"}]}, ""),
    ({"signature_name": "positive", "instances": [1.0, -1.0]}, "x must be > 0"),  # a TF error while running
])
def test_failures_answer_an_error_object(toy, body, words):
    answer = _rest(toy, body)
    assert set(answer) == {"error"} and isinstance(answer["error"], str) and words in answer["error"]


def test_a_kcv_classifier_answers_b64_instances_on_serving_default(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(keras.layers.Rescaling(1 / 255.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    names = ["cat", "dog", "emu"]
    loaded = tf.saved_model.load(export_classifier(model, str(tmp_path / "m"), names, (8, 8)))
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    body = {"instances": [{"b64": base64.b64encode(encode_png(im)).decode()} for im in images]}
    answer = _rest(loaded, body)
    expected = tf.nn.softmax(model(images.astype(np.float32), training=False)).numpy()
    assert [sorted(p) for p in answer["predictions"]] == [["class_names", "classes", "probabilities"]] * 3
    np.testing.assert_allclose([p["probabilities"] for p in answer["predictions"]], expected, atol=1e-5)
    assert [p["classes"] for p in answer["predictions"]] == expected.argmax(1).tolist()
    assert [p["class_names"] for p in answer["predictions"]] == [names[i] for i in expected.argmax(1)]
    columnar = _rest(loaded, {"inputs": {"image_bytes": body["instances"]}})["outputs"]
    np.testing.assert_allclose(columnar["probabilities"], expected, atol=1e-5)
    bad = _rest(loaded, {"instances": [{"b64": base64.b64encode(b"not an image").decode()}]})
    assert set(bad) == {"error"}
