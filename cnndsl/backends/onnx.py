"""ONNX backend: a checked Model -> an ONNX model (NCHW, float32) that onnxruntime runs.

Each layer kind lowers itself (`LayerKind.lower`) through the `OnnxCtx` below; this module owns the
naming, the weights (seeded He init, spec-given kernels, or a trained .npz), value_info from cnndsl's
own shapes, and writing the file atomically. Everything is built in lists and assembled once.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import __version__
from ..graph import inputs_of
from ..layers import LAYERS, Shape, Weight, fmt_shape
from ..model import Model

OPSET = 21  # onnxruntime >= 1.20 runs it; Gelu (20) is the newest op we use
IR_VERSION = 10  # the IR version that goes with opset 21 (onnx.helper.VERSION_TABLE)
PROTOBUF_LIMIT = 2**31 - 1  # one serialised protobuf message; bigger models keep weights in a .data file
INPUT = "input"
INITS = ("he", "zeros")  # the default weights: He (Kaiming) uniform from the seed, or zeros (`--no-weights`)


class WeightsError(ValueError):
    """A weights file that does not fit the network; `problems` lists every mismatch by name."""

    def __init__(self, path: str, problems: list[str]):
        n = len(problems)
        super().__init__(f"`{path}` does not match the network ({n} problem{'s' if n != 1 else ''})")
        self.problems = problems


# --- the weights a network expects -------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    name: str  # `<node>.<suffix>`, the initializer's name
    weight: Weight


def expected_weights(model: Model) -> list[Expected]:
    """Every weight tensor of the network, in layer order, named as the ONNX initializers are."""
    g, out = model.layer_graph, []
    for n, d in g.nodes(data=True):
        ins = [g.nodes[s]["shape"] for s in inputs_of(g, n)]
        for w in LAYERS[d["op"]].weights(ins, d["shape"], d["attrs"]):
            out.append(Expected(f"{n}.{w.suffix}", w))
    return out


def _name_seed(seed: int, name: str) -> np.random.SeedSequence:
    # NOTE: a stream per weight name, so a layer's weights do not change when another layer is edited
    digest = hashlib.sha256(name.encode()).digest()
    return np.random.SeedSequence([seed, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


def initial_value(e: Expected, seed: int = 0, init: str = "he") -> np.ndarray:
    """The float32 value of one weight when no weights file gives it: what its `Init` says, from a stream
    of `seed` named after the weight; `init="zeros"` (`--no-weights`) zeroes the random ones."""
    w = e.weight
    if init == "zeros" and w.init.random:
        return np.zeros(w.shape, np.float32)
    return w.init.value(w.shape, _name_seed(seed, e.name))


def _npz_members(model: Model, path: str) -> dict:
    """Array name -> archives.Member from an .npz's headers, without reading the data; WeightsError."""
    from .. import archives

    limit = 16 * sum(e.weight.size for e in expected_weights(model)) + (1 << 20)
    try:
        return archives.npz_members(path, limit, "16 bytes for each number this network's weights hold")
    except archives.ArchiveError as e:
        raise WeightsError(path, e.problems) from None


def check_weights_file(model: Model, path: str) -> list[str]:
    """Raise WeightsError naming every missing, extra, wrongly shaped, non-numeric or damaged array; return
    warnings (arrays holding NaN or infinity). Every member is read once here, so a damaged one is found
    before anything is written.

    Raises cnndsl.safeio.FileProblem when the file cannot be opened at all.
    """
    from .. import archives

    found = _npz_members(model, path)
    problems = []
    expected = {e.name: e for e in expected_weights(model)}
    for name, e in expected.items():
        want = fmt_shape(e.weight.shape)
        if e.weight.fixed is not None:
            if name in found:
                problems.append(f"`{name}`: fixed by the spec (`w={e.weight.fixed.text}`); remove it from the file")
            continue
        if name not in found:
            problems.append(f"`{name}`: missing, expected {want}")
            continue
        shape, dtype = found[name].shape, found[name].dtype
        if shape != e.weight.shape:
            problems.append(f"`{name}`: shape {fmt_shape(shape) or 'scalar'}, expected {want}")
        elif dtype.kind not in "fiu":
            problems.append(f"`{name}`: dtype {dtype}, expected numbers (stored as float32)")
    for name in found:
        if name not in expected:
            problems.append(f"`{name}`: not a weight of this network")
    if problems:
        raise WeightsError(path, problems)
    warnings = []
    with zipfile.ZipFile(path) as zf:
        for name, m in found.items():
            try:
                arr = archives.read_member(zf, m)
            except archives.ArchiveError as e:
                problems += e.problems
                continue
            if archives.nonfinite(arr):
                warnings.append(f"`{name}` holds NaN or infinite values")
            del arr
    if problems:
        raise WeightsError(path, problems)
    return warnings


def weight_values(model: Model, seed: int = 0, init: str = "he", weights: str | None = None
                  ) -> Iterator[tuple[Expected, np.ndarray]]:
    """Each weight's value, one at a time (so only one array is alive beyond the initializers)."""
    from .. import archives

    zf = found = None
    if weights is not None:
        found = _npz_members(model, weights)  # checked by to_onnx; the headers again, cheaply
        zf = zipfile.ZipFile(weights)
    try:
        for e in expected_weights(model):
            if zf is not None and e.weight.fixed is None:
                yield e, np.asarray(archives.read_member(zf, found[e.name]), dtype=np.float32)
            else:
                yield e, initial_value(e, seed, init)
    finally:
        if zf is not None:
            zf.close()


# --- lowering ------------------------------------------------------------------------------------


def _nchw(shape: Shape, batch: Any = "N") -> list[Any]:
    """cnndsl's H x W x C (or a vector N) -> ONNX dims [N, C, H, W] (or [N, F])."""
    if len(shape) == 3:
        h, w, c = shape
        return [batch, c, h, w]
    return [batch, *shape]


class OnnxCtx:
    """What a lowering sees of the export: tensor names, and a place to put nodes and constants.

    The lowerings in cnndsl.layers are written against exactly this interface.
    """

    def __init__(self, ex: _Exporter, node: str, inputs: list[str], shape: Shape):
        self._ex, self._node, self._inputs, self._shape = ex, node, inputs, shape
        self.output = node
        self.aliased: str | None = None

    def input(self, i: int) -> str:
        """The tensor name of input slot i."""
        return self._inputs[i]

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        name = self._ex.unique(f"{self._node}/{op_type}", self._ex.node_names)
        self._ex.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))

    def tmp(self, suffix: str, shape: Shape | None = None) -> str:
        """A fresh float32 intermediate `<node>/<suffix>` in cnndsl's layout: `shape` (H x W x C, or a vector)
        is exported NCHW (or [N, F]); it defaults to the layer's output shape."""
        return self.tensor(suffix, _nchw(shape or self._shape))

    def tensor(self, suffix: str, dims: list[Any], dtype: Any = np.float32) -> str:
        """A fresh intermediate `<node>/<suffix>` of any rank, layout and dtype: `dims` are ONNX dims as
        they are, batch included (use "N" for the batch), e.g. ["N", h, w, c] for a channels-last view."""
        name = self._ex.unique(f"{self._node}/{suffix}", self._ex.tensors)
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self._ex.value_info.append(helper.make_tensor_value_info(name, elem, list(dims)))
        return name

    def const(self, suffix: str, value: Any, dtype: Any = np.float32) -> str:
        """A constant initializer `<node>.<suffix>` of any rank and dtype (float32 by default; np.int64 for
        shapes, axes and indices): a scalar for a number, an array for a (nested) list or an array."""
        name = f"{self._node}.{suffix}"
        arr = np.asarray(value, dtype=dtype)
        if name in self._ex.consts:
            if not np.array_equal(self._ex.consts[name], arr):  # pragma: no cover - a lowering bug
                raise ValueError(f"constant {name} is defined twice with different values")
            return name
        self._ex.consts[name] = arr
        self._ex.tensors.add(name)
        self._ex.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def alias(self, tensor: str) -> None:
        """This layer computes nothing: its output is `tensor` (dropout and identity at inference)."""
        self.aliased = tensor


class _Exporter:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.value_info: list[onnx.ValueInfoProto] = []
        self.consts: dict[str, np.ndarray] = {}
        self.tensors: set[str] = set()
        self.node_names: set[str] = set()

    def unique(self, base: str, taken: set[str]) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name


@dataclass
class Exported:
    """An exported model: the graph without the weights' values, and where those values come from.

    The weights are produced one at a time while the model is written (`write`), so a model is never
    held in memory twice; `to_proto()` gives the whole ModelProto when one is wanted.
    """

    skeleton: onnx.ModelProto  # nodes, value_info, metadata, small constants: everything but the weights
    model: Model
    seed: int
    init: str
    weights: str | None  # an .npz already checked against the network
    weight_bytes: int
    how: str  # how the weights were made, in words
    warnings: tuple[str, ...] = ()  # about the weights file (NaN or infinite values)

    def values(self) -> Iterator[tuple[Expected, np.ndarray]]:
        return weight_values(self.model, self.seed, self.init, self.weights)

    def write(self, f: BinaryIO, data: BinaryIO | None = None, data_name: str = "") -> None:
        """Write the serialised model to f; with `data`, the weights go there as ONNX external data."""
        f.write(self.skeleton.SerializeToString())
        offset = 0
        for e, arr in self.values():
            t = TensorProto(name=e.name, data_type=TensorProto.FLOAT, dims=arr.shape)
            raw = memoryview(np.ascontiguousarray(arr, dtype="<f4")).cast("B")  # ONNX raw data: little-endian
            if data is not None:
                t.data_location = TensorProto.EXTERNAL
                for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(raw.nbytes))):
                    entry = t.external_data.add()
                    entry.key, entry.value = key, value
                data.write(raw)
                offset += raw.nbytes
                head, raw = t.SerializeToString(), memoryview(b"")
            else:
                head = t.SerializeToString() + _key(9, raw.nbytes)  # TensorProto.raw_data, the bytes follow
            # NOTE: protobuf merges repeated occurrences of an embedded message field, so appending
            # `graph { initializer { ... } }` once per weight equals one graph holding them all; this
            # streams the weights to the file without ever serialising the whole model in memory.
            tensor = _key(5, len(head) + raw.nbytes)  # GraphProto.initializer
            f.write(_key(7, len(tensor) + len(head) + raw.nbytes))  # ModelProto.graph
            f.write(tensor)
            f.write(head)
            f.write(raw)

    def check(self) -> None:
        """onnx's full check (structure, types, shape inference) of the model, the weights' values aside.

        The weights are declared as shape-only graph inputs, so checking costs no memory for them; how
        their values are encoded is the same for every model and is checked on whole files by the tests.
        """
        m = onnx.ModelProto()
        m.CopyFrom(self.skeleton)
        m.graph.input.extend(helper.make_tensor_value_info(e.name, TensorProto.FLOAT, e.weight.shape)
                             for e in expected_weights(self.model))
        onnx.checker.check_model(m, full_check=True)

    def to_bytes(self) -> bytes:
        """The serialised model, for onnxruntime straight from memory (models under 2 GB)."""
        buf = io.BytesIO()
        self.write(buf)
        return buf.getvalue()

    def to_proto(self) -> onnx.ModelProto:
        return onnx.load_from_string(self.to_bytes())


def _key(field: int, length: int) -> bytes:
    """A length-delimited protobuf field's key and length: varint(field << 3 | 2), varint(length)."""
    out = bytearray()
    for v in (field << 3 | 2, length):
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def to_onnx(model: Model, seed: int = 0, init: str = "he", weights: str | None = None,
            weights_label: str | None = None) -> Exported:
    """Lower every layer and attach the weights. Raises WeightsError for a weights file that does not fit.

    `weights_label` names the weights' origin in the metadata when the .npz was converted from another file.
    """
    g, ex = model.layer_graph, _Exporter()
    tensor = {}  # layer id -> the tensor that holds its output (itself, or what it aliases)
    inp = g.graph["input"]
    tensor[inp] = INPUT
    ex.tensors.add(INPUT)
    for n, d in g.nodes(data=True):
        if n == inp:
            continue
        srcs = inputs_of(g, n)
        ctx = OnnxCtx(ex, n, [tensor[s] for s in srcs], d["shape"])
        ex.tensors.add(n)
        LAYERS[d["op"]].lower(ctx, n, [g.nodes[s]["shape"] for s in srcs], d["shape"], d["attrs"])
        tensor[n] = ctx.aliased or n
        if ctx.aliased is None and n not in model.outputs:
            ex.value_info.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, _nchw(d["shape"])))
    for o in model.outputs:  # an output that is another tensor (a final dropout) still gets its own name
        if tensor[o] != o:
            OnnxCtx(ex, o, [], g.nodes[o]["shape"]).node("Identity", [tensor[o]], [o])

    graph = helper.make_graph(
        ex.nodes, model.name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, _nchw(model.input_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, _nchw(g.nodes[o]["shape"])) for o in model.outputs],
        initializer=ex.initializers, value_info=ex.value_info,
    )
    spec = Path(model.path).name if model.path[:1] != "<" else model.path
    sha = hashlib.sha256(model.source.encode()).hexdigest()
    how = (f"from {weights_label or Path(weights).name}" if weights else "He uniform, seed " + str(seed) if init == "he"
           else "zeros (--no-weights)")
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="cnndsl", producer_version=__version__,
        doc_string=f"{model.name}: exported by cnndsl {__version__} from {spec} (sha256 {sha}); weights: {how}",
    )
    helper.set_model_props(proto, {
        "cnndsl.network": model.name, "cnndsl.version": __version__, "cnndsl.spec": spec,
        "cnndsl.spec_sha256": sha, "cnndsl.weights": how,
    })
    warnings = check_weights_file(model, weights) if weights is not None else []
    weight_bytes = 4 * sum(e.weight.size for e in expected_weights(model))
    return Exported(proto, model, seed, init, weights, weight_bytes, how, tuple(warnings))


# --- writing -------------------------------------------------------------------------------------


@dataclass
class Written:
    path: Path
    size: int  # bytes of the .onnx file
    data_path: Path | None = None  # the external weights file, when there is one
    data_size: int = 0


def save(ex: Exported, path: str | Path, external: bool | None = None, check: bool = True) -> Written:
    """Check the model, then write it atomically: a temp file in the same folder, then os.replace.

    The weights go to `<path>.data` (ONNX external data) when `external` is true, or by default when
    they would not fit in one protobuf message. A failure leaves no partial file and does not touch an
    existing one. Raises OSError for an unusable path, onnx.checker.ValidationError for a bad model.
    """
    from .. import safeio

    target = safeio.as_target(path)
    path = target.path
    folder = path.parent
    if check:
        ex.check()
    if external is None:
        external = ex.weight_bytes > PROTOBUF_LIMIT - (64 << 20)  # leave room for the graph itself
    if external and target.stream:
        raise safeio.FileProblem(f"cannot write `{path}` with its weights in a .data file beside it: it is a "
                                 "device or a pipe; give a file name")
    data_name = f"{path.name}.data"
    with safeio.temp_dir(folder) as tmpdir:
        tmp, tmp_data = tmpdir / path.name, tmpdir / data_name
        with open(tmp, "wb") as f:
            if external:
                with open(tmp_data, "wb") as data:
                    ex.write(f, data, data_name)
            else:
                ex.write(f)
        size = tmp.stat().st_size
        if external:
            safeio.publish(tmp_data, folder / data_name)
        safeio.publish(tmp, target)
        return Written(path, size, folder / data_name if external else None,
                       (folder / data_name).stat().st_size if external else 0)


def save_weights(model: Model, path: str | Path, seed: int = 0, init: str = "he") -> int:
    """Write the default weights as an .npz template (spec-fixed kernels left out), atomically.

    Arrays are streamed into the archive one at a time. Returns the number of arrays written.
    """
    from .. import safeio

    target = safeio.as_target(path)
    count = 0
    with safeio.temp_dir(target.path.parent) as d:
        tmp = d / "weights.npz"
        with open(tmp, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for e in expected_weights(model):
                if e.weight.fixed is not None:
                    continue
                info = zipfile.ZipInfo(f"{e.name}.npy", date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, initial_value(e, seed, init), allow_pickle=False)
                count += 1
        safeio.publish(tmp, target)
    return count
