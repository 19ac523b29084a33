"""TF Serving warm-up requests, written into every exported SavedModel.

TF Serving's "SavedModel Warmup": when a model version loads, the server replays the records of
`<export>/assets.extra/tf_serving_warmup_requests` (a TFRecord file of serialized
`tensorflow.serving.PredictionLog`) before it serves, so the first real request does not pay for
graph initialisation and kernel autotuning. `write_warmup(export_dir)` writes one small predict
request per signature, read from the SavedModel's own signature defs:

- batch 1 (every unknown dimension 1);
- string inputs named `*_bytes`: a valid 8x8 grey RGB PNG; other strings: b"";
- every other input (uint8/float images, int64 seeds, float noise): zeros of its dtype.

`model_spec.name` is left empty: TF Serving fills in the name of the model it is loading;
`model_spec.signature_name` names the signature.

tensorflow-serving-api is not a dependency (it pulls the full tensorflow wheel over
tensorflow-cpu), so the few messages needed are declared here with descriptor_pb2, in a private
descriptor pool (no clash if the real package is installed too). Field numbers as in the
tensorflow/serving repository's apis/*.proto:
    prediction_log.proto  PredictionLog { PredictLog predict_log = 6; }  (in oneof log_type)
                          PredictLog    { PredictRequest request = 1; }
    predict.proto         PredictRequest { ModelSpec model_spec = 1; map<string, TensorProto> inputs = 2; }
    model.proto           ModelSpec     { string name = 1; string signature_name = 3; }
TensorProto is TensorFlow's own tensorflow/core/framework/tensor.proto.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Mapping

import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import saved_model_pb2

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
_PACKAGE = "tensorflow.serving"
_F = descriptor_pb2.FieldDescriptorProto


def _add_with_dependencies(pool: descriptor_pool.DescriptorPool, file: Any, done: set[str]) -> None:
    for dep in file.dependencies:
        _add_with_dependencies(pool, dep, done)
    if file.name not in done:
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)
        done.add(file.name)


def _field(message: Any, name: str, number: int, kind: int, type_name: str = "",
           label: int = _F.LABEL_OPTIONAL) -> None:
    field = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:  # only message fields name a type; an empty type_name still counts as set
        field.type_name = type_name


@functools.cache
def messages() -> dict[str, type]:
    """The message classes {"PredictionLog", "PredictLog", "PredictRequest", "ModelSpec", "TensorProto"}."""
    pool = descriptor_pool.DescriptorPool()
    _add_with_dependencies(pool, tensor_pb2.DESCRIPTOR, set())
    file = descriptor_pb2.FileDescriptorProto(name="kcv/serving/tf_serving_warmup.proto", package=_PACKAGE,
                                              syntax="proto3", dependency=[tensor_pb2.DESCRIPTOR.name])
    spec = file.message_type.add(name="ModelSpec")
    _field(spec, "name", 1, _F.TYPE_STRING)
    _field(spec, "signature_name", 3, _F.TYPE_STRING)
    request = file.message_type.add(name="PredictRequest")
    _field(request, "model_spec", 1, _F.TYPE_MESSAGE, f".{_PACKAGE}.ModelSpec")
    entry = request.nested_type.add(name="InputsEntry")  # what protoc makes of a map<string, TensorProto>
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, ".tensorflow.TensorProto")
    _field(request, "inputs", 2, _F.TYPE_MESSAGE, f".{_PACKAGE}.PredictRequest.InputsEntry", _F.LABEL_REPEATED)
    log = file.message_type.add(name="PredictLog")
    _field(log, "request", 1, _F.TYPE_MESSAGE, f".{_PACKAGE}.PredictRequest")
    prediction_log = file.message_type.add(name="PredictionLog")
    _field(prediction_log, "predict_log", 6, _F.TYPE_MESSAGE, f".{_PACKAGE}.PredictLog")
    pool.Add(file)
    names = {n: f"{_PACKAGE}.{n}" for n in ("PredictionLog", "PredictLog", "PredictRequest", "ModelSpec")}
    names["TensorProto"] = "tensorflow.TensorProto"
    return {k: message_factory.GetMessageClass(pool.FindMessageTypeByName(v)) for k, v in names.items()}


@functools.cache
def _tiny_png() -> bytes:
    return tf.io.encode_png(tf.fill([8, 8, 3], tf.constant(128, tf.uint8))).numpy()


def example_input(name: str, spec: tf.TensorSpec) -> np.ndarray:
    """A valid value for one input of a warm-up request: batch 1, see the module doc."""
    shape = [1 if d is None else d for d in spec.shape.as_list()] if spec.shape.rank is not None else [1]
    if spec.dtype == tf.string:
        return np.full(shape, _tiny_png() if name.endswith("_bytes") else b"", dtype=object)
    return np.zeros(shape, spec.dtype.as_numpy_dtype)


def signature_inputs(export_dir: str) -> dict[str, dict[str, tf.TensorSpec]]:
    """{signature: {input name: TensorSpec}} from the SavedModel's saved_model.pb (no graph loading)."""
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    out: dict[str, dict[str, tf.TensorSpec]] = {}
    for key, sig in saved.meta_graphs[0].signature_def.items():
        if key.startswith("__"):  # e.g. __saved_model_init_op: not a servable signature
            continue
        out[key] = {name: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype), name)
                    for name, info in sig.inputs.items()}
    return out


def prediction_logs(signatures: Mapping[str, Mapping[str, tf.TensorSpec]]) -> list[Any]:
    """One PredictionLog (a predict request of batch 1) per signature, in signature-name order."""
    m = messages()
    logs = []
    for signature in sorted(signatures):
        log = m["PredictionLog"]()
        request = log.predict_log.request
        request.model_spec.signature_name = signature
        for name, spec in sorted(signatures[signature].items()):
            # Our TensorProto class lives in the private pool: copy by bytes, not CopyFrom.
            request.inputs[name].ParseFromString(
                tf.make_tensor_proto(example_input(name, spec), dtype=spec.dtype).SerializeToString())
        logs.append(log)
    return logs


def write_warmup(export_dir: str) -> str:
    """Write `<export_dir>/assets.extra/tf_serving_warmup_requests`; returns its path."""
    folder = os.path.join(export_dir, WARMUP_DIR)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for log in prediction_logs(signature_inputs(export_dir)):
            writer.write(log.SerializeToString())
    return path
