"""TF Serving's REST predict API answered locally by a `tf.saved_model.load`ed model.

`call_rest(loaded, body)` answers a predict body as TF Serving's "RESTful API" page specifies:

- `signature_name` picks the signature (default `serving_default`).
- Row format `{"instances": [...]}`: one item per batch row, either the bare value of the
  signature's single input or an object `{input name: value}` naming every input; all inputs
  share the 0-th dimension. Answer `{"predictions": [...]}`: one item per row, an object
  `{output name: value}`, or the bare value when the signature has a single output.
- Columnar format `{"inputs": ...}`: an object `{input name: whole tensor}`, or the bare tensor of
  a single input; batch sizes may differ. Answer `{"outputs": ...}`: an object
  `{output name: whole tensor}`, or the bare tensor of a single output.
- Binary strings travel as `{"b64": "<base64>"}`: such input values are decoded; string outputs
  whose name ends in `_bytes` are encoded so, other string outputs are UTF-8 strings.
- Every failure (bad body, unknown signature, missing or unknown input, ragged rows, a
  TensorFlow error while running) answers `{"error": "<message>"}` instead of raising.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np
import tensorflow as tf

_BYTES_SUFFIX = "_bytes"  # TF Serving's marker of binary string tensors


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _decode(value: Any) -> Any:
    """JSON value -> the same with {"b64": ...} objects as bytes and str as UTF-8 bytes."""
    if _is_b64(value):
        return base64.b64decode(value["b64"], validate=True)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value.encode("utf-8") if isinstance(value, str) else value


def instances_to_inputs(body: dict, input_names: list[str]) -> dict[str, list]:
    """Row format {"instances": [...]} -> {input name: list of the rows' values}, b64 decoded."""
    if "instances" not in body:
        raise ValueError('REST body needs "instances" (row format)')
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise ValueError('"instances" must be a non-empty list')
    columns: dict[str, list] = {name: [] for name in input_names}
    for i, row in enumerate(instances):
        if isinstance(row, dict) and not _is_b64(row):
            _check_names(set(row), input_names, f"instance {i}")
            for name in input_names:
                columns[name].append(_decode(row[name]))
        elif len(input_names) == 1:
            columns[input_names[0]].append(_decode(row))
        else:
            raise ValueError(f"instance {i} is a bare value, but the signature has inputs {input_names}: "
                             "name each input in an object")
    return columns


def _check_names(given: set[str], input_names: list[str], where: str) -> None:
    missing, unknown = set(input_names) - given, given - set(input_names)
    if missing:
        raise ValueError(f"{where} lacks inputs {sorted(missing)}")
    if unknown:
        raise ValueError(f"{where} has unknown inputs {sorted(unknown)}; the signature takes {input_names}")


def _columns(body: dict, input_names: list[str]) -> dict[str, Any]:
    """Columnar format {"inputs": ...} -> {input name: whole value}, b64 decoded."""
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        _check_names(set(inputs), input_names, '"inputs"')
        return {name: _decode(inputs[name]) for name in input_names}
    if len(input_names) != 1:
        raise ValueError(f'a bare "inputs" value needs a single-input signature, this one has {input_names}')
    return {input_names[0]: _decode(inputs)}


def _tensor(name: str, value: Any, spec: tf.TensorSpec) -> tf.Tensor:
    try:
        tensor = tf.constant(value, dtype=spec.dtype)
    except (ValueError, TypeError) as e:  # ragged lists, wrong types
        raise ValueError(f"input {name!r}: cannot make a {spec.dtype.name} tensor: {e}") from None
    if not spec.shape.is_compatible_with(tensor.shape):
        raise ValueError(f"input {name!r}: shape {tensor.shape.as_list()} does not fit {spec.shape}")
    return tensor


def _jsonable(value: Any, binary: bool) -> Any:
    """numpy output (or one row of it) -> nested lists; bytes as {"b64"} if binary, else UTF-8."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        return [_jsonable(v, binary) for v in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")} if binary else value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


def _predict(loaded: Any, body: dict) -> dict:
    if not isinstance(body, dict):
        raise ValueError("REST body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise ValueError('REST body needs exactly one of "instances" (row format) or "inputs" (columnar format)')
    name = body.get("signature_name", "serving_default")
    if name not in loaded.signatures:
        raise ValueError(f"no signature {name!r}; have {sorted(loaded.signatures)}")
    fn = loaded.signatures[name]
    specs: dict[str, tf.TensorSpec] = fn.structured_input_signature[1]
    names = sorted(specs)
    row_format = "instances" in body
    values = instances_to_inputs(body, names) if row_format else _columns(body, names)
    tensors = {k: _tensor(k, v, specs[k]) for k, v in values.items()}
    outputs = {k: v.numpy() for k, v in fn(**tensors).items()}
    binary = {k: k.endswith(_BYTES_SUFFIX) and v.dtype == object for k, v in outputs.items()}
    single = next(iter(outputs)) if len(outputs) == 1 else None
    if not row_format:
        if single is not None:
            return {"outputs": _jsonable(outputs[single], binary[single])}
        return {"outputs": {k: _jsonable(v, binary[k]) for k, v in outputs.items()}}
    n = len(body["instances"])
    for k, v in outputs.items():  # rows need every output batched like the instances
        if v.ndim == 0 or v.shape[0] != n:
            raise ValueError(f"output {k!r} has shape {list(v.shape)}, not a batch of {n} rows; "
                             'use the columnar format ("inputs")')
    if single is not None:
        return {"predictions": [_jsonable(row, binary[single]) for row in outputs[single]]}
    return {"predictions": [{k: _jsonable(v[i], binary[k]) for k, v in outputs.items()} for i in range(n)]}


def call_rest(loaded: Any, body: dict) -> dict:
    """Answer a REST predict `body` with a loaded SavedModel, as TF Serving would (see module doc).

    Returns {"predictions": [...]} (row format), {"outputs": ...} (columnar) or {"error": "..."}.
    """
    try:
        return _predict(loaded, body)
    except (ValueError, TypeError, tf.errors.OpError) as e:
        message = e.message if isinstance(e, tf.errors.OpError) else str(e)
        return {"error": message}
