"""TF Serving's REST request format mapped onto a loaded signature, for tests and local use.

TF Serving's row format `{"signature_name": ..., "instances": [...]}`: each instance is either the
bare value of the signature's single input or a dict keyed by input name; binary values travel
as `{"b64": "<base64>"}`. `call_rest` does that mapping and calls the signature, so a client can
check locally what a served model would answer.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np
import tensorflow as tf


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def instances_to_inputs(body: dict, input_names: list[str]) -> dict[str, np.ndarray]:
    """{"instances": [...]} -> {input name: batched array}, as TF Serving's row format does it."""
    if "instances" not in body:
        raise ValueError('REST body needs "instances" (row format)')
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise ValueError('"instances" must be a non-empty list')
    columns: dict[str, list] = {name: [] for name in input_names}
    for row in instances:
        if isinstance(row, dict) and set(row) != {"b64"}:
            missing = set(input_names) - set(row)
            if missing:
                raise ValueError(f"instance lacks inputs {sorted(missing)}")
            for name in input_names:
                columns[name].append(_decode(row[name]))
        else:
            if len(input_names) != 1:
                raise ValueError(f"bare instances need a single-input signature, this one has {input_names}")
            columns[input_names[0]].append(_decode(row))
    return {name: np.array(values, dtype=object if isinstance(values[0], bytes) else None)
            for name, values in columns.items()}


def call_rest(loaded: Any, body: dict) -> dict[str, list]:
    """Answer a REST predict body with a `tf.saved_model.load`ed model: {"predictions": [...]}."""
    name = body.get("signature_name", "serving_default")
    if name not in loaded.signatures:
        raise ValueError(f"no signature {name!r}; have {sorted(loaded.signatures)}")
    fn = loaded.signatures[name]
    specs = fn.structured_input_signature[1]
    inputs = instances_to_inputs(body, sorted(specs))
    tensors = {k: tf.constant(v.tolist() if v.dtype == object else v, dtype=specs[k].dtype) for k, v in inputs.items()}
    outputs = {k: v.numpy() for k, v in fn(**tensors).items()}
    n = len(next(iter(inputs.values())))
    predictions = [{k: _jsonable(v[i]) for k, v in outputs.items()} for i in range(n)]
    return {"predictions": predictions}


def _jsonable(value: np.ndarray) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value] if value.dtype == object else value.tolist()
    return value.item() if hasattr(value, "item") else value
