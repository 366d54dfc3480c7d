"""Import: an ONNX CNN -> a readable cnndsl spec and its weights (`cnndsl import MODEL.onnx`).

The inverse of the ONNX backend, in four steps, each leaning on the layer registry rather than a table of
its own:

1. lift: every ONNX node becomes a layer of the kind whose `lift` accepts it (`LayerKind.lifts`,
   `LayerKind.lift` in cnndsl.layers); Identity and Dropout vanish; nodes that only compute shapes die;
2. fuse: batch norm and activations that follow a conv-like layer become its `bn=`/`act=`;
3. structure: single-entry single-exit regions around merges become `residual { }` and
   `concat { | }` / `add { | }` / `mul { | }` (dominators of the layer graph); anything else is written
   with named values;
4. text: the most common parameters become `defaults`, repeated units (found by the module names the
   exporters keep, `layer3.2.conv1` -> unit `layer3.2`, stage `layer3`) become blocks with parameters,
   consecutive equal calls become `repeat`.

The result is checked before anything is written: the spec compiles, its weights fill every array, and
onnxruntime gives the same outputs for the original and the re-exported model.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from . import onnx_layout
from .layers import ACTIVATIONS, LAYERS, Lifted, Sym, Unliftable
from .util import fmt_shape

ALIASES = {"Identity", "Dropout"}  # nodes that compute nothing at inference
def _fold_slice(xs, a):
    x, starts, ends = xs[0], xs[1], xs[2]
    axes = xs[3] if len(xs) > 3 else np.arange(len(starts))
    steps = xs[4] if len(xs) > 4 else np.ones(len(starts), np.int64)
    idx = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps, strict=True):
        idx[int(ax)] = slice(int(st), int(min(en, 2**31)), int(sp))
    return x[tuple(idx)]


def _int_div(a, b):
    return a // b if a.dtype.kind in "iu" and b.dtype.kind in "iu" else a / b


# size computations evaluated while importing (small integer tensors only)
_FOLD: dict[str, Callable[[list[np.ndarray], dict], np.ndarray]] = {
    "Shape": lambda xs, a: xs[0],  # handled from the known dimensions
    "Gather": lambda xs, a: np.take(xs[0], xs[1].astype(np.int64), axis=int(a.get("axis", 0))),
    "Unsqueeze": lambda xs, a: np.expand_dims(xs[0], tuple(int(i) for i in (xs[1] if len(xs) > 1 else a["axes"]))),
    "Squeeze": lambda xs, a: np.squeeze(xs[0], tuple(int(i) for i in xs[1])) if len(xs) > 1 else np.squeeze(xs[0]),
    "Concat": lambda xs, a: np.concatenate([np.atleast_1d(x) for x in xs], axis=int(a.get("axis", 0))),
    "Add": lambda xs, a: xs[0] + xs[1],
    "Sub": lambda xs, a: xs[0] - xs[1],
    "Mul": lambda xs, a: xs[0] * xs[1],
    "Div": lambda xs, a: _int_div(xs[0], xs[1]),
    "Cast": lambda xs, a: xs[0].astype(helper_dtype(int(a["to"]))),
    "Slice": _fold_slice,
}


def helper_dtype(to: int):
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(to)


# ops that keep a channels-last view channels-last: element-wise ones and those over the last axis
CHANNELS_LAST_OPS = {"LayerNormalization", "MatMul", "Add", "Mul", "Sub", "Div", "Gelu", "Erf", "Relu", "Sigmoid",
                     "Tanh", "Identity", "Dropout", "Clip", "HardSwish", "HardSigmoid", "LeakyRelu", "Elu"}
MAX_ONNX_BYTES = 4 << 30
TOLERANCE = 1e-4  # relative difference of the outputs above which an import is refused


class ImportFailure(Exception):
    """The model cannot be written as a spec; `problems` lists each node (name, op) with the reason."""

    def __init__(self, message: str, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message)
        self.problems = problems or []
        self.hint = hint


# --- reading the model -------------------------------------------------------------------------


def load(path: str, input_shape: tuple[int, ...] | None = None):
    """The ModelProto with every tensor's shape inferred; dynamic input dims pinned by `input_shape`."""
    import onnx
    from onnx import shape_inference

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # a truncated or foreign file: protobuf's own message says what
        raise ImportFailure(f"`{path}` is not an ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ImportFailure(f"the model has {len(inputs)} inputs; a cnndsl spec has exactly one")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) not in (2, 4):
        raise ImportFailure(f"the model's input has rank {len(dims)}; cnndsl takes N x C x H x W images or "
                            "N x F vectors")
    if input_shape is not None:
        want = [1, input_shape[2], input_shape[0], input_shape[1]] if len(input_shape) == 3 else [1, *input_shape]
        if len(input_shape) == 3 and onnx_layout.channels_last_input(model):  # Keras: N x H x W x C
            want = [1, *input_shape]
        if len(want) != len(dims):
            raise ImportFailure(f"--input-shape {fmt_shape(input_shape)} does not fit the model's rank-{len(dims)} "
                                "input")
        for d, v in zip(list(dims)[1:], want[1:], strict=True):
            if d.HasField("dim_value") and d.dim_value != v:
                raise ImportFailure(f"--input-shape {fmt_shape(input_shape)} differs from the model's fixed "
                                    f"input {_dims_text(dims)}")
            d.dim_value = v
    for i, d in enumerate(list(dims)[1:], 1):
        if not d.HasField("dim_value") or d.dim_value < 1:
            raise ImportFailure(
                f"the model's input `{inputs[0].name}` has a dynamic dimension {i} ({_dims_text(dims)})",
                hint="pin it with `--input-shape HxWxC`, e.g. `--input-shape 224x224x3`")
    _check_sizes(model, [d.dim_value for d in dims])
    _load_external(model, path)
    try:
        return shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:
        raise ImportFailure(f"ONNX shape inference fails on the model: {str(e)[:300]}") from None


MAX_TENSOR = 2**31  # elements of one weight (cnndsl.model.MAX_PARAMS: 8 GiB of float32)
MAX_INPUT = 2**28  # values of one input image: 1 GiB of float32 (an 8192 x 8192 x 4 image)


def _check_sizes(model, input_dims: list[int]) -> None:
    """Sizes a hostile file may declare, refused before anything is allocated: a weight's header saying
    10^12 elements over 16 bytes of data, an input of a million by a million pixels."""
    from onnx import TensorProto, helper

    per_image = math.prod(input_dims[1:])
    if per_image > MAX_INPUT:
        raise ImportFailure(f"the model's input is {' x '.join(map(str, input_dims))}: {per_image:,} values an image, "
                            f"beyond cnndsl's limit of {MAX_INPUT:,}",
                            hint="pin a smaller image with `--input-shape HxWxC` if the model allows it")
    tensors = [*model.graph.initializer, *(a.t for n in model.graph.node if n.op_type == "Constant"
                                           for a in n.attribute if a.name == "value")]
    for t in tensors:
        if any(d < 0 for d in t.dims):
            raise ImportFailure(f"weight `{t.name}` declares a negative dimension {list(t.dims)}")
        n = math.prod(t.dims)
        if n > MAX_TENSOR:
            raise ImportFailure(f"weight `{t.name}` declares {' x '.join(map(str, t.dims))} = {n:,} elements, beyond "
                                f"cnndsl's limit of {MAX_TENSOR:,}")
        if t.data_location == TensorProto.EXTERNAL:
            continue
        try:
            size = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        except (KeyError, ValueError, TypeError):
            raise ImportFailure(f"weight `{t.name}` has an unknown element type ({t.data_type})") from None
        if t.raw_data:
            held = len(t.raw_data) / size
        else:
            field = next((f for f in ("float_data", "int64_data", "int32_data", "double_data", "uint64_data",
                                      "string_data") if len(getattr(t, f))), None)
            held = len(getattr(t, field)) if field else 0
        if held != n and not (n == 0 and held == 0):
            raise ImportFailure(f"weight `{t.name}` declares {' x '.join(map(str, t.dims)) or 'a scalar'} = {n:,} "
                                f"elements but holds {held:,g}")


def _load_external(model, path: str) -> None:
    """Read weights kept beside the model (`model.onnx.data`), refusing any location that leaves the
    model's folder or reads past the end of its file."""
    import os

    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    folder = os.path.dirname(os.path.abspath(path))
    external = False
    for t in model.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        external = True
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        if not loc or os.path.isabs(loc) or os.path.basename(loc) != loc or loc in (".", ".."):
            raise ImportFailure(f"initializer `{t.name}` points outside the model's folder ({loc!r})")
        full = os.path.join(folder, loc)
        if not os.path.isfile(full):
            raise ImportFailure(f"initializer `{t.name}` is kept in `{loc}`, which is not beside the model")
        end = int(info.get("offset", 0) or 0) + int(info.get("length", 0) or 0)
        if end > os.path.getsize(full):
            raise ImportFailure(f"initializer `{t.name}` reads past the end of `{loc}`")
    if external:
        load_external_data_for_model(model, folder)


def _dims_text(dims) -> str:
    return " x ".join(d.dim_param or str(d.dim_value) if d.HasField("dim_value") or d.dim_param else "?"
                      for d in dims)


class OnnxView:
    """One ONNX node as a kind's `lift` sees it: attributes, constant inputs, shapes in cnndsl's layout."""

    def __init__(self, imp: _Importer, node):
        self._imp, self.node = imp, node
        self.op, self.name = node.op_type, node.name or node.output[0]
        self._attrs = {a.name: a for a in node.attribute}

    @property
    def n_inputs(self) -> int:
        return len(self.node.input)

    def input_name(self, i: int) -> str:
        return self.node.input[i] if i < len(self.node.input) else ""

    def attr(self, name: str, default: Any = None) -> Any:
        from onnx import helper

        a = self._attrs.get(name)
        if a is None:
            return default
        v = helper.get_attribute_value(a)
        return v.decode() if isinstance(v, bytes) else v

    def const(self, i: int) -> np.ndarray | None:
        """Input i's value when it is a constant (an initializer or a Constant node), else None."""
        return self._imp.consts.get(self.input_name(i)) if i < len(self.node.input) else None

    def in_shape(self, i: int) -> tuple[int, ...]:
        return self._imp.shape(self.input_name(i))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self._imp.shape(self.node.output[0])

    def dims(self, i: int) -> list[Any] | None:
        """Input i's raw ONNX dimensions (None where unknown), in the tensor's own layout."""
        return self._imp.dims.get(self.input_name(i))

    def channels_last(self, i: int) -> bool:
        """Input i is an N x H x W x C view (inside PyTorch's permute(0, 2, 3, 1) ... permute(0, 3, 1, 2))."""
        return self.input_name(i) in self._imp.nhwc

    def producer(self, i: int) -> OnnxView | None:
        node = self._imp.producer.get(self.input_name(i))
        return OnnxView(self._imp, node) if node is not None else None

    @property
    def sole_consumer(self) -> bool:
        return len(self._imp.consumers[self.node.output[0]]) == 1


# --- 1. lift -------------------------------------------------------------------------------------


@dataclass
class Layer:
    """A lifted layer: its kind, spec parameters, weights by suffix, data inputs (layer ids) and where it
    came from (ONNX node names, and the module path the exporter recorded)."""

    id: str
    kind: str
    params: dict[str, Any]
    weights: dict[str, np.ndarray]
    inputs: list[str]
    sources: list[str]
    module: tuple[str, ...] = ()
    onnx_op: str = ""


class _Importer:
    def __init__(self, model):
        from onnx import numpy_helper

        g = model.graph
        self.model = model
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and n.attribute:
                from onnx import helper

                v = helper.get_attribute_value(n.attribute[0])
                self.consts[n.output[0]] = numpy_helper.to_array(v) if hasattr(v, "dims") else np.asarray(v)
        for n in g.node:  # a weight shared by value reaches its users through an Identity
            if n.op_type == "Identity" and n.input and n.input[0] in self.consts:
                self.consts[n.output[0]] = self.consts[n.input[0]]
        self.dims: dict[str, list[Any]] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        self._split_to_slices()
        self._fold_shapes()
        self.producer = {o: n for n in g.node for o in n.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for n in g.node:
            for i in n.input:
                self.consumers[i].append(n)
        inits = {t.name for t in g.initializer}
        self.input = next(i.name for i in g.input if i.name not in inits)
        self.outputs = [o.name for o in g.output]
        self._layouts()

    def _split_to_slices(self) -> None:
        """A Split into several outputs (the dynamo exporter's `x.chunk(2, 1)`) becomes one Slice an output, so
        that each part is a layer of its own (`split i of=k`)."""
        from onnx import helper, numpy_helper

        g = self.model.graph
        if not any(n.op_type == "Split" for n in g.node):
            return
        nodes = []
        for n in g.node:
            d = self.dims.get(n.input[0]) if n.op_type == "Split" and n.input else None
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            axis = int(attrs.get("axis", 0))
            if d is None or not -len(d) <= axis < len(d) or d[axis] is None:
                nodes.append(n)
                continue
            sizes = self.consts.get(n.input[1]) if len(n.input) > 1 and n.input[1] else attrs.get("split")
            k = len(n.output)
            sizes = [int(x) for x in sizes] if sizes is not None else (
                [d[axis] // k] * k if d[axis] % k == 0 else None)
            if sizes is None or len(sizes) != k or sum(sizes) != d[axis]:
                nodes.append(n)
                continue
            lo = 0
            for i, (out, size) in enumerate(zip(n.output, sizes, strict=True)):
                names = [f"{out}/cnndsl_{w}" for w in ("starts", "ends", "axes")]
                for name, v in zip(names, ([lo], [lo + size], [axis]), strict=True):
                    self.consts[name] = np.array(v, np.int64)
                    g.initializer.append(numpy_helper.from_array(self.consts[name], name))
                sl = helper.make_node("Slice", [n.input[0], *names], [out], name=f"{n.name}_{i}")
                sl.metadata_props.extend(n.metadata_props)
                nodes.append(sl)
                lo += size
        del g.node[:]
        g.node.extend(nodes)

    def _fold_shapes(self) -> None:
        """Evaluate the small integer computations that exporters write for sizes (Shape -> Gather -> Div ->
        Slice starts, Concat -> Reshape shapes), so that the layers reading them see constants (ShuffleNet's
        `chunk` as Slices). The batch is taken as 1: these values only decide what the layers are, and the
        import is checked on the original model by onnxruntime."""
        from onnx import helper

        self.folded: set[str] = set()
        for _ in range(256):  # each round's new shapes may let the next fold more (one round a ShuffleNet unit)
            if not self._fold_once(helper):
                break
            self._reinfer()

    def _fold_once(self, helper) -> bool:
        before = len(self.folded)
        for n in self.model.graph.node:
            if n.op_type not in _FOLD or len(n.output) != 1 or not n.input or n.output[0] in self.folded:
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            try:
                if n.op_type == "Shape":
                    d = self.dims.get(n.input[0])
                    if d is None or None in d[1:]:
                        continue
                    lo, hi = int(attrs.get("start", 0)), attrs.get("end")
                    val = np.array([1 if x is None else x for x in d], np.int64)[lo:None if hi is None else int(hi)]
                else:
                    xs = [self.consts.get(i) for i in n.input if i]
                    if any(x is None for x in xs) or any(x.size > 64 for x in xs):
                        continue
                    val = _FOLD[n.op_type](xs, attrs)
            except (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError):
                continue
            self.consts[n.output[0]] = np.asarray(val)
            self.folded.add(n.output[0])
        return len(self.folded) > before

    def _reinfer(self) -> None:
        """Shape inference again with the folded sizes as constants (the Slices and Reshapes that read them
        get static shapes); the weights go in as typed inputs, not copied."""
        from onnx import helper, numpy_helper, shape_inference

        g = self.model.graph
        small = {t.name for t in g.initializer if np.prod(t.dims) <= 64}
        graph = helper.make_graph(
            [n for n in g.node if not (len(n.output) == 1 and n.output[0] in self.folded)], "shapes",
            [*g.input, *(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in g.initializer
                         if t.name not in small and t.name not in {i.name for i in g.input})],
            list(g.output),
            [t for t in g.initializer if t.name in small]
            + [numpy_helper.from_array(self.consts[name], name) for name in sorted(self.folded)])
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        model.ir_version = self.model.ir_version
        try:
            model = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - the first inference's shapes stand
            return
        for vi in model.graph.value_info:
            t = vi.type.tensor_type
            if t.HasField("shape"):
                d = [x.dim_value if x.HasField("dim_value") else None for x in t.shape.dim]
                old = self.dims.get(vi.name)
                if old is None or sum(x is None for x in d) < sum(x is None for x in old):
                    self.dims[vi.name] = d

    def _layouts(self) -> None:
        """Which 4-D tensors are channels-last views: PyTorch's `permute(0, 2, 3, 1)` ... `permute(0, 3, 1, 2)`
        around per-position layers (ConvNeXt's LayerNorm and Linear layers). Element-wise ops and those over
        the last axis keep the view; any other op reading one gives a tensor whose layout is unknown."""
        self.nhwc: set[str] = set()
        self.lost: set[str] = set()
        self.views: set[int] = set()  # the Transposes that only change the view: aliases
        for n in self.model.graph.node:
            data = [i for i in n.input if i and i not in self.consts]
            if n.op_type == "Transpose" and len(data) == 1:
                perm = [int(p) for p in next((a.ints for a in n.attribute if a.name == "perm"), [])]
                rank4 = len(self.dims.get(data[0]) or []) == 4
                if perm == [0, 2, 3, 1] and rank4 and data[0] not in self.nhwc | self.lost:
                    self.nhwc.update(n.output)
                    self.views.add(id(n))
                    continue
                if perm == [0, 3, 1, 2] and data[0] in self.nhwc:
                    self.views.add(id(n))
                    continue
            if any(i in self.nhwc or i in self.lost for i in data):
                keep = n.op_type in CHANNELS_LAST_OPS and not any(i in self.lost for i in data)
                (self.nhwc if keep else self.lost).update(o for o in n.output if o)

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's shape in cnndsl's layout: N x C x H x W -> (H, W, C); N x F -> (F,)."""
        d = self.dims.get(name)
        if name in self.lost:
            raise Unliftable(f"tensor `{name}` is computed from a channels-last view by an op cnndsl cannot "
                             "follow in that layout")
        if name in self.nhwc and d is not None and len(d) == 4 and None not in d[1:]:
            return (d[1], d[2], d[3])
        if d is None or any(x is None for x in d[1:]) or len(d) not in (2, 4):
            raise Unliftable(f"tensor `{name}` has no static NCHW or NxF shape "
                             f"({'unknown' if d is None else 'x'.join(str(x) for x in d)})")
        return (d[2], d[3], d[1]) if len(d) == 4 else (d[1],)

    def lift(self) -> tuple[dict[str, Layer], str, list[str]]:
        """Layers by id (the ONNX output name), the input's id, the output ids; ImportFailure lists problems."""
        layers: dict[str, Layer] = {}
        alias: dict[str, str] = {}
        problems: dict[str, str] = {}
        absorbed: set[int] = set()
        data_inputs: dict[str, list[str]] = {}

        def real(name: str) -> str:
            while name in alias:
                name = alias[name]
            return name

        for node in self.model.graph.node:
            if id(node) in absorbed or node.op_type == "Constant" or node.output[0] in self.folded:
                continue
            v = OnnxView(self, node)
            if node.op_type in ALIASES or id(node) in self.views:
                alias[node.output[0]] = node.input[0]
                continue
            found: Lifted | None = None
            kind = None
            refusal: Unliftable | None = None
            try:
                for k in LAYERS.values():
                    if node.op_type in k.lifts and k.lift is not None:
                        try:  # one kind's refusal (flatten's on a 5-D Reshape) leaves the others to try
                            found = k.lift(v)
                        except Unliftable as e:
                            refusal = refusal or e
                            continue
                        if found is not None:
                            kind = k
                            break
                if found is None and refusal is not None:
                    raise refusal
            except Unliftable as e:
                problems[node.output[0]] = f"`{v.name}` ({node.op_type}): {e}"
                data_inputs[node.output[0]] = list(node.input)
                continue
            except (ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
                # a malformed node (an attribute of the wrong type, a missing input): the model's fault
                problems[node.output[0]] = f"`{v.name}` ({node.op_type}): malformed node ({type(e).__name__}: {e})"
                data_inputs[node.output[0]] = list(node.input)
                continue
            if found is None:
                problems[node.output[0]] = f"`{v.name}` ({node.op_type}): no cnndsl layer kind expresses it"
                data_inputs[node.output[0]] = list(node.input)
                continue
            for a in found.absorbs:
                absorbed.add(id(a.node))
                if node.output[0] in a.node.input:  # a node after this one (a bias Add): its output is ours
                    alias[a.node.output[0]] = node.output[0]
            ins = [i if isinstance(i, str) else node.input[i] for i in found.inputs]
            data_inputs[node.output[0]] = ins
            layers[node.output[0]] = Layer(
                node.output[0], kind.name, dict(found.params), {k: np.asarray(w) for k, w in found.weights.items()},
                ins, [v.name] + [a.name for a in found.absorbs], _module_path(node), node.op_type)
        # what the outputs need, through data inputs only (shape computations and their Shape/Gather die)
        needed, todo = set(), [real(o) for o in self.outputs]
        while todo:
            t = todo.pop()
            if t in needed or t == self.input or t in self.consts:
                continue
            needed.add(t)
            todo.extend(real(i) for i in data_inputs.get(t, []))
        live_problems = [p for t, p in problems.items() if t in needed]
        if live_problems:
            ops = Counter(re.search(r"\((\w+)\)", p).group(1) for p in live_problems)
            summary = ", ".join(f"{op} x{k}" for op, k in ops.most_common())
            raise ImportFailure(f"{len(live_problems)} ONNX node(s) cannot be written in cnndsl ({summary})",
                                live_problems)
        out = {}
        for t, layer in layers.items():
            if t in needed:
                layer.inputs = [real(i) for i in layer.inputs]
                out[t] = layer
        outs = []
        for o in self.outputs:
            if real(o) == self.input:  # the model computes nothing (an Identity, an inference Dropout)
                out[o] = Layer(o, "identity", {}, {}, [self.input], [o])
                outs.append(o)
            else:
                outs.append(real(o))
        return out, self.input, outs


def _module_path(node) -> tuple[str, ...]:
    """The module a node came from, as a path: ('layer1', '0', 'conv1') for the TorchScript exporter's
    `/layer1/layer1.0/conv1/Conv` (each scope repeats its parent's name: `layer1.0` is child `0` of
    `layer1`), or from the dynamo exporter's name-scope metadata; () when the exporter kept no names."""
    parts: list[str] = []
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            import ast

            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                scopes = []
            parts = [str(x) for x in scopes if str(x)] if isinstance(scopes, list) else []
        if p.key == onnx_layout.MODULE_KEY:  # Keras' layer name (block_1_expand -> block.1.expand)
            parts = [p.value]
    name = node.name
    if not parts and name.startswith("/") and name.count("/") >= 2:
        parts = name.split("/")[1:-1]
    if not parts:
        return ()
    path: list[str] = []
    prev = ""
    for part in parts:
        if prev and part.startswith(prev + "."):
            path += part[len(prev) + 1:].split(".")
        elif part:
            path += part.split(".")
        prev = part
    return tuple(path)


# --- 2. fuse -------------------------------------------------------------------------------------


def _fuse(layers: dict[str, Layer], outputs: list[str]) -> tuple[dict[str, Layer], list[str]]:
    """Fold batch norm and activations into the conv-like or fc layer before them, where nothing else reads
    the intermediate value: `conv` -> `bn` -> `relu` becomes `conv ... bn=true act=relu`; a `flatten` read
    only by an `fc` goes (fc flattens a volume itself, in the same C, H, W order). Returns the layers and
    the outputs' new ids."""
    consumers: dict[str, list[str]] = defaultdict(list)
    for layer in layers.values():
        for i in layer.inputs:
            consumers[i].append(layer.id)
    gone: set[str] = set()
    rename: dict[str, str] = {}
    for layer in list(layers.values()):
        if layer.id in gone:
            continue
        kind = LAYERS[layer.kind]
        cur = layer.id
        if "bn" in kind.params and not layer.params.get("bn"):
            nxt = _sole_next(cur, consumers, layers, outputs)
            if nxt is not None and nxt.kind == "bn":
                layer.params["bn"] = True
                if "eps" in nxt.params:
                    layer.params["eps"] = nxt.params["eps"]
                layer.weights.update({f"bn.{k}": w for k, w in nxt.weights.items()})
                layer.sources += nxt.sources
                gone.add(nxt.id)
                cur = nxt.id
        if "act" in kind.params:
            nxt = _sole_next(cur, consumers, layers, outputs)
            if nxt is not None and nxt.kind in ACTIVATIONS and not nxt.params:
                layer.params["act"] = Sym(nxt.kind)
                layer.sources += nxt.sources
                gone.add(nxt.id)
                cur = nxt.id
        if cur != layer.id:
            rename[cur] = layer.id
        if layer.kind == "flatten" and layer.id not in outputs:
            nxt = _sole_next(layer.id, consumers, layers, outputs)
            if nxt is not None and nxt.kind == "fc":
                gone.add(layer.id)
                rename[layer.id] = layer.inputs[0]
    out = {}
    for t, layer in layers.items():
        if t in gone:
            continue
        layer.inputs = [rename.get(i, i) for i in layer.inputs]
        out[t] = layer
    return out, [rename.get(o, o) for o in outputs]


def _sole_next(t: str, consumers, layers, outputs) -> Layer | None:
    cs = consumers.get(t, [])
    if len(cs) != 1 or t in outputs:
        return None
    return layers.get(cs[0])


# --- 3. structure ----------------------------------------------------------------------------------


@dataclass
class Construct:
    """`residual { body; shortcut {...} }`, or a merge over branches `concat { a | b }`."""

    kind: str  # residual | concat | add | mul
    branches: list[list[Any]]  # each a list of elements (Layer | Construct); [] is the identity
    merge: Layer

    @property
    def module(self) -> tuple[str, ...]:
        mods = [m for m in (_first_module(b) for b in self.branches) if m] + (
            [self.merge.module] if self.merge.module else [])
        return _common(mods)


def _first_module(elems: list[Any]) -> tuple[str, ...]:
    mods = [e.module for e in elems if e.module]
    return _common(mods) if mods else ()


def _common(mods: list[tuple[str, ...]]) -> tuple[str, ...]:
    if not mods:
        return ()
    out = []
    for parts in zip(*mods, strict=False):
        if len(set(parts)) != 1:
            break
        out.append(parts[0])
    return tuple(out)


class _Structure:
    def __init__(self, layers: dict[str, Layer], source: str):
        self.layers, self.source = layers, source
        self.g = nx.DiGraph()
        self.g.add_node(source)
        for t, layer in layers.items():
            self.g.add_node(t)
            for slot, i in enumerate(layer.inputs):
                self.g.add_edge(i, t, slot=slot)
        self.idom = nx.immediate_dominators(self.g, source)

    def chain(self, src: str, dst: str) -> list[Any] | None:
        """The elements leading from value src to value dst, or None when the graph between them is not
        a chain of layers and nested single-entry single-exit regions."""
        elems: list[Any] = []
        cur = dst
        while cur != src:
            if cur == self.source:
                return None
            layer = self.layers[cur]
            if len(layer.inputs) > 1 or (LAYERS[layer.kind].is_merge and layer.inputs):
                con = self.region(cur)
                if con is None:
                    return None
                elems.append(con)
                cur = self.idom[cur]
                continue
            (prev,) = layer.inputs
            if prev != src and self.g.out_degree(prev) != 1:
                return None
            elems.append(layer)
            cur = prev
        elems.reverse()
        return elems

    def region(self, m: str) -> Construct | None:
        d = self.idom[m]
        inside = nx.descendants(self.g, d) & nx.ancestors(self.g, m)
        for r in inside:
            if any(p != d and p not in inside for p in self.g.predecessors(r)):
                return None
            if any(s != m and s not in inside for s in self.g.successors(r)):
                return None
        if any(s != m and s not in inside for s in self.g.successors(d)):
            return None
        merge = self.layers[m]
        branches = []
        for i in merge.inputs:
            if i == d:
                branches.append([])
                continue
            b = self.chain(d, i)
            if b is None:
                return None
            branches.append(b)
        if merge.kind == "add" and len(branches) == 2 and (branches[0] == [] or branches[1] == [] or
                                                            _depth(branches[0]) != _depth(branches[1])):
            body, short = (branches[0], branches[1]) if _depth(branches[0]) >= _depth(branches[1]) else (
                branches[1], branches[0])
            return Construct("residual", [body, short], merge)
        return Construct(merge.kind, branches, merge)


def _depth(elems: list[Any]) -> int:
    return sum(1 if isinstance(e, Layer) else 1 + max(_depth(b) for b in e.branches) for e in elems)


# --- 4. text ---------------------------------------------------------------------------------------

_ORDER = ("mode", "f", "s", "p", "d", "n", "m", "g", "op", "scale", "size", "alpha", "beta", "k", "ceil")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return str(v[0]) if len(set(v)) == 1 else fmt_shape(v)
    if isinstance(v, (float, np.floating)):
        if float(np.float32(v)) == float(v):  # an ONNX attribute (float32): its shortest decimal, 0.1 not 0.1000000015
            return next(t for k in range(1, 10) if np.float32(float(t := f"{float(v):.{k}g}")) == np.float32(v))
        return f"{float(v):.10g}"
    return str(v)


def _layer_text(layer: Layer, defaults: dict[str, dict[str, str]], num=None) -> str:
    """A layer as a spec writes it; `num(value_text, param)` may replace a number by a block parameter."""
    kind = LAYERS[layer.kind]
    given = {k: _value(v) for k, v in layer.params.items()}
    dflt = defaults.get(layer.kind, {})
    words = [layer.kind]
    keys = sorted(set(given) | set(dflt), key=lambda k: (_ORDER.index(k) if k in _ORDER else 99,
                                                          list(kind.params).index(k)))
    for k in keys:
        native = _value(kind.params[k].default) if kind.params[k].default not in (None,) else None
        v = given.get(k, native)
        if v is None or v == dflt.get(k, native):
            continue
        text = num(v, k) if num else v
        if k in kind.positional and k == kind.positional[0] and k != "n":
            words.append(text)
        elif layer.kind == "fc" and k == "n":
            words.append(text)
        else:
            words.append(f"{k}={text}")
    return " ".join(words)


def _choose_defaults(layers: list[Layer]) -> dict[str, dict[str, str]]:
    """Parameters that most layers of a kind share become `defaults KIND ...` (conv: bias=false bn=true
    act=relu, as the zoo writes ResNets)."""
    by_kind: dict[str, list[Layer]] = defaultdict(list)
    for layer in layers:
        by_kind[layer.kind].append(layer)
    out: dict[str, dict[str, str]] = {}
    for kind, ls in by_kind.items():
        if len(ls) < 4:
            continue
        params = LAYERS[kind].params
        for k in ("bias", "bn", "act", "eps"):
            if k not in params:
                continue
            native = _value(params[k].default)
            counts = Counter(_value(layer.params[k]) if k in layer.params else native for layer in ls)
            v, c = counts.most_common(1)[0]
            if v != native and c * 2 > len(ls):
                out.setdefault(kind, {})[k] = v
    return out


_NUM = re.compile(r"(?<![\w.])(\d+)(?![\w.])")


WIDTH = 100


class _Writer:
    """Elements as spec text: one chain joined by `->`, wrapped onto lines that start with `->`; a
    construct opens braces, its body indented by two spaces."""

    def __init__(self, defaults: dict[str, dict[str, str]]):
        self.defaults = defaults

    def piece(self, e: Any, indent: str, num=None) -> list[str]:
        """One element: a line, or (a construct) a first line, inner lines indented, and a closing `}`."""
        if isinstance(e, str):
            return [e]
        if isinstance(e, Layer):
            return [_layer_text(e, self.defaults, num)]
        inner = indent + "  "
        if e.kind == "residual":
            body, short = e.branches
            lines = ["residual {"] + self.chain(body, inner, num)
            if short:
                one = self.chain(short, "", num)
                if len(one) == 1 and len(inner) + len(one[0]) + 12 <= WIDTH:
                    lines.append(f"{inner}shortcut {{ {one[0]} }}")
                else:
                    lines += [inner + "shortcut {"] + self.chain(short, inner + "  ", num) + [inner + "}"]
            return lines + ["}"]
        parts = [self.chain(b, "", num) if b else ["identity"] for b in e.branches]
        one = f"{e.kind} {{ " + " | ".join(p[0] for p in parts) + " }"
        if all(len(p) == 1 for p in parts) and len(indent) + len(one) <= WIDTH:
            return [one]
        lines = [e.kind + " {"]
        for k, b in enumerate(e.branches):
            if k:
                lines.append(indent + "|")
            lines += self.chain(b, inner, num) if b else [inner + "identity"]
        return lines + ["}"]

    def chain(self, elems: list[Any], indent: str, num=None) -> list[str]:
        lines: list[str] = []
        cur = ""
        for k, e in enumerate(elems):
            p = self.piece(e, indent, num)
            sep = "-> " if k else ""
            if cur and len(indent) + len(cur) + len(sep) + len(p[0]) > WIDTH:
                lines.append(indent + cur.rstrip())
                cur = ""
            cur += sep + p[0] + " "
            if len(p) > 1:
                lines.append(indent + cur.rstrip())
                lines += p[1:-1]
                cur = p[-1] + " "
        if cur.strip():
            lines.append(indent + cur.rstrip())
        return lines


@dataclass
class Unit:
    """Consecutive top-level elements of one module (`layer3.2`): the candidates for blocks."""

    key: tuple[str, ...]
    elems: list[Any]
    text: list[str] = field(default_factory=list)


def _units(elems: list[Any]) -> list[Unit]:
    """Consecutive elements of one module. The unit is the module two names deep (`layer3.2`), or three
    when the third is an index too (`features.2.0`, a block inside a numbered stage)."""
    units: list[Unit] = []
    for e in elems:
        m = e.module
        key = m[:3] if len(m) >= 3 and m[2].isdigit() else m[:2]
        if units and units[-1].key == key and key:
            units[-1].elems.append(e)
        else:
            units.append(Unit(key, [e]))
    return units


_RESERVED = {"network", "input", "defaults", "import", "output", "block", "residual", "shortcut", "repeat", "fn",
             "let", "for", "in", "if", "elif", "else", "and", "or", "not"}  # the language's keywords (lexer.py)


def _ident(text: str) -> str:
    t = re.sub(r"\W+", "_", text).strip("_") or "stage"
    t = t if not t[0].isdigit() else f"m{t}"
    return f"{t}s" if t in _RESERVED or t in LAYERS else t  # Keras' `block_1_...` layers: `blocks = ...`


@dataclass
class Spec:
    """An imported spec: its text, its weights in `cnndsl weights` order, and what the import did."""

    text: str
    weights: list[tuple[str, np.ndarray]]  # (layer kind, suffix) pairing is checked when compiling
    layers: list[Layer]
    notes: list[str]
    layout: onnx_layout.Layout = field(default_factory=onnx_layout.Layout)  # the original's channels-last edges


def _flat(elems: list[Any]) -> list[Layer]:
    """The layers in the order cnndsl builds them: a residual's body, then its shortcut, then the add; a
    merge's empty branch is written `identity`, a layer of its own."""
    out: list[Layer] = []
    for e in elems:
        if isinstance(e, Layer):
            out.append(e)
            continue
        for b in e.branches:
            if not b and e.kind != "residual":
                out.append(Layer(f"{e.merge.id}/identity", "identity", {}, {}, [], []))
            out += _flat(b)
        out.append(e.merge)
    return out


def _write(elems: list[Any], input_shape: tuple[int, ...], name: str, notes: list[str]) -> str:
    layers = _flat(elems)
    defaults = _choose_defaults(layers)
    w = _Writer(defaults)
    head = [f"# {name}: imported from ONNX by `cnndsl import`"] + [f"# {n}" for n in notes]
    head += [f"network {_ident(name)}", f"input {fmt_shape(input_shape)}"]
    for kind, ps in defaults.items():
        head.append(f"defaults {kind} " + " ".join(f"{k}={v}" for k, v in ps.items()))

    units = _units(elems)
    # units whose text differs only in numbers become blocks; the numbers that vary become parameters
    skeleton: dict[str, list[Unit]] = defaultdict(list)
    for u in units:
        u.text = w.chain(u.elems, "  ")
        if len(_flat(u.elems)) >= 2 and u.key:
            skeleton[_NUM.sub("#", "\n".join(u.text))].append(u)
    blocks: list[str] = []
    calls: dict[int, str] = {}
    taken: set[str] = set()
    for _sk, us in sorted(skeleton.items(), key=lambda kv: units.index(kv[1][0])):
        if len(us) < 2:
            continue
        bname = _block_name(us, taken)
        vecs = [[int(m) for m in _NUM.findall("\n".join(u.text))] for u in us]
        params: list[tuple[str, tuple[int, ...]]] = []
        exprs: list[str] = []
        names_of = _param_names("\n".join(us[0].text))
        for j, col in enumerate(zip(*vecs, strict=True)):
            exprs.append(_param_expr(col, params, names_of[j] if j < len(names_of) else "v"))
        values = iter(exprs)
        body = _NUM.sub(lambda _m, it=values: next(it), "\n".join(us[0].text))
        sig = ", ".join(p for p, _ in params)
        blocks.append(f"block {bname}({sig}) {{\n{body}\n}}" if params else f"block {bname} {{\n{body}\n}}")
        for k, u in enumerate(us):
            args = ", ".join(str(col[k]) for _, col in params)
            calls[id(u)] = f"{bname}({args})" if params else bname
    # the body: units of one stage (`layer3`) as one named value; consecutive equal calls repeated
    body_lines: list[str] = []
    i = 0
    while i < len(units):
        stage = units[i].key[:-1]
        j = i
        while j + 1 < len(units) and stage and units[j + 1].key[:-1] == stage:
            j += 1
        items: list[Any] = []
        for u in units[i:j + 1]:
            items += [calls[id(u)]] if id(u) in calls else u.elems
        items = _compress(items)
        if j > i:
            lines = w.chain(items, "  ")
            body_lines.append(f"{_ident('_'.join(stage))} = " + lines[0].lstrip())
            body_lines += lines[1:]
        else:
            body_lines += w.chain(items, "")
        i = j + 1
    text = "\n".join(head) + "\n\n" + ("\n\n".join(blocks) + "\n\n" if blocks else "")
    return text + "\n".join(body_lines) + "\n"


def _param_expr(col: tuple[int, ...], params: list[tuple[str, tuple[int, ...]]], base: str) -> str:
    """How a number that varies across a block's calls is written in its body: a constant, an existing
    parameter, a multiple of one (`4*n`), or a new parameter named after the layer parameter it sets."""
    if len(set(col)) == 1:
        return str(col[0])
    for pname, pcol in params:
        if pcol == col:
            return pname
        if all(p and c % p == 0 for c, p in zip(col, pcol, strict=True)) and len(
                {c // p for c, p in zip(col, pcol, strict=True)}) == 1:
            return f"{col[0] // pcol[0]}*{pname}"
    pname, k = base, 2
    while any(pname == p for p, _ in params):
        pname, k = f"{base}{k}", k + 1
    params.append((pname, col))
    return pname


def _compress(items: list[Any]) -> list[Any]:
    """`b(64) -> b(64) -> b(64)` -> `repeat 3 { b(64) }` (block calls only)."""
    out: list[Any] = []
    i = 0
    while i < len(items):
        j = i
        while isinstance(items[i], str) and j + 1 < len(items) and items[j + 1] == items[i]:
            j += 1
        out.append(f"repeat {j - i + 1} {{ {items[i]} }}" if j > i else items[i])
        i = j + 1
    return out


def _param_names(text: str) -> list[str]:
    """For each number in a unit's text, the parameter it is the value of (`n` in `n=64`), to name block
    parameters after them."""
    names = []
    for m in _NUM.finditer(text):
        before = text[: m.start()]
        key = re.search(r"(\w+)=$", before)
        if key:
            names.append(key.group(1))
        elif re.search(r"\bfc $", before):
            names.append("n")
        else:
            names.append("v")
    return names


def _block_name(us: list[Unit], taken: set[str]) -> str:
    """`res` for a residual unit, `res_down` when its shortcut has layers (a projection), `branches`
    for a merge of branches, `se` for a gate, `unit` for a plain chain; numbered when taken."""
    cons = [e for e in us[0].elems if isinstance(e, Construct)]
    if not cons:
        base = "unit"
    elif cons[0].kind == "residual":
        base = "res_down" if cons[0].branches[1] else "res"
    else:
        base = {"mul": "se", "concat": "branches", "add": "branches"}.get(cons[0].kind, "unit")
    name, k = base, 2
    while name in taken:
        name, k = f"{base}{k}", k + 1
    taken.add(name)
    return name


# --- the whole import ------------------------------------------------------------------------------


def import_model(model, name: str) -> Spec:
    """A shape-inferred ModelProto -> Spec; raises ImportFailure with every problem found."""
    layout = onnx_layout.normalise(model)  # Keras through tf2onnx: channels-last edges, its own forms of layers
    imp = _Importer(model)
    layers, src, outs = imp.lift()
    layers, outs = _fuse(layers, outs)
    try:
        input_shape = imp.shape(src)
    except Unliftable as e:
        raise ImportFailure(f"the model's input: {e}") from None
    notes: list[str] = list(layout.notes)
    if model.producer_name == "pytorch" and any(
            layer.onnx_op == "Conv" and "bias" in layer.weights for layer in layers.values()) and not any(
            layer.kind == "bn" or layer.params.get("bn") for layer in layers.values()):
        notes.append("no batch norm: an exporter in eval mode folds it into the convolutions' weights and biases")
    elems = None
    if len(outs) == 1:
        try:
            elems = _Structure(layers, src).chain(src, outs[0])
        except Unliftable:
            elems = None
    if elems is None:
        spec = _named_values(layers, src, outs, input_shape, name, notes)
    else:
        text = _write(elems, input_shape, name, notes)
        flat = _flat(elems)
        spec = Spec(text, [(f"{i}", w) for i, w in enumerate(flat)], flat, notes)
    spec.layout = layout
    return spec


def _named_values(layers, src, outs, input_shape, name, notes) -> Spec:
    """Any DAG: each layer a named value, merges by name (the fallback when regions do not nest)."""
    order = list(nx.topological_sort(_Structure(layers, src).g))
    ids = {src: "input"}
    lines = [f"# {name}: imported from ONNX by `cnndsl import`"] + [f"# {n}" for n in notes]
    lines += [f"network {_ident(name)}", f"input {fmt_shape(input_shape)}"]
    flat = []
    for k, t in enumerate(x for x in order if x != src):
        layer = layers[t]
        ids[t] = f"x{k + 1}"
        text = _layer_text(layer, {})
        if LAYERS[layer.kind].is_merge:
            lines.append(f"{ids[t]} = {layer.kind}(" + ", ".join(ids[i] for i in layer.inputs) + ")")
        else:
            lines.append(f"{ids[t]} = {ids[layer.inputs[0]]} -> {text}")
        flat.append(layer)
    lines.append("output " + ", ".join(ids[o] for o in outs))
    return Spec("\n".join(lines) + "\n", [], flat, notes)


# --- weights and the check that the spec computes what the model computes --------------------------


@dataclass
class Imported:
    spec: Spec
    model: Any  # the compiled cnndsl Model
    weights: dict[str, np.ndarray]  # by cnndsl weight name, ready for `np.savez`
    params_onnx: int  # elements of the original's initializers that became weights
    max_rel_error: float | None = None


def bind_weights(spec: Spec, path: str) -> Imported:
    """Compile the spec and give every one of its weights the array the import lifted for it."""
    from .diagnostics import CompileError, render
    from .model import compile_text

    try:
        m = compile_text(spec.text, path)
    except CompileError as e:  # a bug of the importer, never the user's: say what it wrote
        raise ImportFailure("the spec written for this model does not compile (a bug in `cnndsl import`)",
                            [render(d, e.sources) for d in e.diagnostics]) from None
    from .graph import inputs_of

    g = m.graph
    nodes = [n for n in g if n != g.graph["input"]]
    if len(nodes) != len(spec.layers):
        raise ImportFailure(f"the spec has {len(nodes)} layers, the model {len(spec.layers)} "
                            "(a bug in `cnndsl import`)")
    out: dict[str, np.ndarray] = {}
    used = 0
    for n, layer in zip(nodes, spec.layers, strict=True):
        d = g.nodes[n]
        if layer.kind != d["op"]:
            raise ImportFailure(f"layer `{n}` is a `{d['op']}` in the spec but a `{layer.kind}` in the model "
                                "(a bug in `cnndsl import`)")
        ins = [g.nodes[s]["shape"] for s in inputs_of(g, n)]
        for w in LAYERS[d["op"]].weights(ins, d["shape"], d["attrs"]):
            arr = layer.weights.get(w.suffix)
            if arr is None or arr.size != w.size:
                got = "none" if arr is None else fmt_shape(arr.shape)
                raise ImportFailure(f"weight `{n}.{w.suffix}` {fmt_shape(w.shape)} has no array in the model "
                                    f"(found {got}; a bug in `cnndsl import`)")
            out[f"{n}.{w.suffix}"] = np.ascontiguousarray(arr.reshape(w.shape), dtype=np.float32)
            used += arr.size
    return Imported(spec, m, out, used)


def verify(imp: Imported, onnx_model: bytes | str, seed: int = 0) -> float:
    """Largest relative difference between the original and the re-exported model on one random batch."""
    import tempfile

    import onnxruntime as ort

    from .backends import onnx as ob

    with tempfile.TemporaryDirectory() as tmp:
        npz = f"{tmp}/w.npz"
        with open(npz, "wb") as f:
            np.savez(f, **imp.weights)
        ours = ob.to_onnx(imp.model, weights=npz).to_bytes()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    a = ort.InferenceSession(onnx_model, opts, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(ours, opts, providers=["CPUExecutionProvider"])
    batch = a.get_inputs()[0].shape[0]
    shape = ob._nchw(imp.model.input_shape, batch if isinstance(batch, int) and batch > 0 else 2)
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    lay = imp.spec.layout  # a channels-last original is fed, and answers, N x H x W x C
    ya = a.run(None, {a.get_inputs()[0].name: x.transpose(0, 2, 3, 1) if lay.input_channels_last else x})
    yb = b.run(None, {"input": x})
    yb = [y.transpose(0, 2, 3, 1) if k < len(lay.outputs_channels_last) and lay.outputs_channels_last[k] else y
          for k, y in enumerate(yb)]
    worst = 0.0
    for u, v in zip(ya, yb, strict=True):
        scale = max(float(np.abs(u).max()), 1e-6)
        worst = max(worst, float(np.abs(u - v).max()) / scale)
    return worst
