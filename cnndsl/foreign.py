"""An `.onnx` model from elsewhere, looked at before onnxruntime opens it (`run`, `bench`).

onnxruntime allocates what a model declares (its weights, constants, a ConstantOfShape's shape): a
200-byte file can ask for gigabytes. `inspect` reads the graph without its external data, refuses what
`run`/`bench` cannot feed (no input, several, a free dimension other than the batch, a string input),
and adds up every size the model declares (initializers, Constant values, ConstantOfShape shapes given
as constants, fixed-shape inputs, outputs and value_info, in subgraphs too) against `--max-memory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import safeio

MAX_ONNX_BYTES = safeio.MAX_ONNX_BYTES


class ForeignError(ValueError):
    """An .onnx file that cnndsl will not hand to onnxruntime; the message says why, in one line."""


@dataclass(frozen=True)
class Feed:
    """The one input a model takes: its name, ONNX dims (a str for the free batch) and numpy dtype."""

    name: str
    dims: list[Any]
    dtype: np.dtype


def _np_dtype(elem: int) -> np.dtype | None:
    from onnx import TensorProto, helper

    if elem in (TensorProto.STRING, TensorProto.UNDEFINED):
        return None
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem))
    except (KeyError, TypeError, ValueError):
        return None


def _itemsize(elem: int) -> int:
    dt = _np_dtype(elem)
    return dt.itemsize if dt is not None else 8


def _tensor_bytes(t) -> int:
    n = math.prod(int(d) for d in t.dims) if t.dims else 1
    return max(n, 0) * _itemsize(t.data_type)


def _declared(graph, batch: int, seen: list[int]) -> int:
    """Bytes every constant, initializer and fixed-shape tensor of `graph` (and its subgraphs) declares."""
    from onnx import AttributeProto, numpy_helper

    seen[0] += 1
    if seen[0] > 10_000:
        raise ForeignError("it nests more than 10,000 subgraphs")
    total = sum(_tensor_bytes(t) for t in graph.initializer)
    consts = {t.name: t for t in graph.initializer}
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None or not tt.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if all(d is not None for d in dims[1:]):
            total += math.prod(max(d, 0) for d in dims[1:]) * (dims[0] if dims and dims[0] else batch) \
                * _itemsize(tt.elem_type)
    for node in graph.node:
        for a in node.attribute:
            if a.type == AttributeProto.TENSOR:
                total += _tensor_bytes(a.t)
                if node.op_type == "Constant":
                    for out in node.output:
                        consts[out] = a.t
            elif a.type == AttributeProto.TENSORS:
                total += sum(_tensor_bytes(t) for t in a.tensors)
            elif a.type == AttributeProto.GRAPH:
                total += _declared(a.g, batch, seen)
            elif a.type == AttributeProto.GRAPHS:
                total += sum(_declared(g, batch, seen) for g in a.graphs)
        if node.op_type in ("ConstantOfShape", "Expand", "Tile") and len(node.input) >= 2 - (
                node.op_type == "ConstantOfShape"):
            shape_input = node.input[0] if node.op_type == "ConstantOfShape" else node.input[1]
            t = consts.get(shape_input)
            if t is not None and _tensor_bytes(t) <= 1 << 16:
                try:
                    values = numpy_helper.to_array(t).astype(object).ravel().tolist()
                except (ValueError, TypeError):
                    continue
                n = math.prod(max(int(v), 0) for v in values) if values else 1
                total += n * 8
    return total


def check_declared(path: str, batch: int, max_memory: int) -> None:
    """ForeignError when the tensors an .onnx file declares (at `batch`) need more than `max_memory` bytes;
    for commands that take models `inspect` would refuse (`cnndsl import` pins free sizes itself)."""
    import onnx

    st = safeio.check_readable(path, "ONNX model", MAX_ONNX_BYTES)
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises its own untyped errors for bad bytes
        raise ForeignError(f"onnxruntime cannot load `{path}`: it is not an ONNX model ({_short(e)})") from None
    need = _declared(proto.graph, batch, [0]) + st.st_size
    if need > max_memory:
        raise ForeignError(f"`{path}` declares {safeio.size_text(need)} of tensors (weights, constants, inputs and "
                           f"outputs at batch {batch}), more than the limit of {safeio.size_text(max_memory)}")


def inspect(path: str, batch: int, max_memory: int) -> Feed:
    """The model's input, after checking that `run`/`bench` can feed it within `max_memory` bytes."""
    import onnx

    st = safeio.check_readable(path, "ONNX model", MAX_ONNX_BYTES)
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises its own untyped errors for bad bytes
        raise ForeignError(f"onnxruntime cannot load `{path}`: it is not an ONNX model ({_short(e)})") from None
    g = proto.graph
    init = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in init]
    if not inputs:
        raise ForeignError(f"`{path}` has no inputs: `cnndsl run` and `bench` feed a model one input")
    if len(inputs) > 1:
        names = ", ".join(f"`{i.name}`" for i in inputs[:5])
        raise ForeignError(f"`{path}` takes {len(inputs)} inputs ({names}): `cnndsl run` and `bench` feed one")
    inp = inputs[0]
    if not inp.type.HasField("tensor_type"):
        raise ForeignError(f"`{path}`: the input `{inp.name}` is not a tensor (a sequence, map or optional); "
                           "cnndsl feeds tensors only")
    tt = inp.type.tensor_type
    dtype = _np_dtype(tt.elem_type)
    if dtype is None or dtype.kind not in "fiub":
        raise ForeignError(f"`{path}`: the input `{inp.name}` holds {onnx.TensorProto.DataType.Name(tt.elem_type)} "
                           "values; cnndsl feeds numbers only")
    if not tt.HasField("shape"):
        raise ForeignError(f"`{path}`: the input `{inp.name}` has no declared shape; cnndsl cannot make one up")
    dims: list[Any] = []
    for k, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif k == 0:
            dims.append(d.dim_param or "N")
        else:
            what = f"`{d.dim_param}`" if d.dim_param else "an unknown size"
            raise ForeignError(f"`{path}`: dimension {k} of the input `{inp.name}` is {what}; cnndsl can choose the "
                               "batch (the first dimension) only")
    need = _declared(g, batch, [0]) + st.st_size
    if need > max_memory:
        raise ForeignError(f"`{path}` declares {safeio.size_text(need)} of tensors (weights, constants, inputs and "
                           f"outputs at batch {batch}), more than the limit of {safeio.size_text(max_memory)}; raise "
                           "it with --max-memory if this is intended")
    return Feed(inp.name, dims, dtype)


def random_feed(feed: Feed, batch: int, seed: int) -> np.ndarray:
    """Random values for the input: standard normal numbers, small integers, or booleans."""
    shape = [batch if not isinstance(d, int) else d for d in feed.dims[:1]] + [int(d) for d in feed.dims[1:]]
    rng = np.random.default_rng(seed)
    if feed.dtype.kind == "f":
        return rng.standard_normal(shape, dtype=np.float32).astype(feed.dtype, copy=False)
    if feed.dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(0, 10, shape).astype(feed.dtype)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[-1] if text else type(e).__name__)[:200]
