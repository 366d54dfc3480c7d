"""Weights from other tools: read a PyTorch state dict, a safetensors file, an ONNX model or an .npz, and map
its tensors onto a spec's weights.

The mapping (`match`) takes names where they are cnndsl's (or PyTorch's batch norm names for them) and
otherwise the structure: the file's tensors in their order, `num_batches_tracked` dropped, paired one to one
with `cnndsl weights`'s list, every pair of the same shape. Nothing is guessed: where the shapes do not line
up, every disagreement is reported with its position, both names and both shapes, and nothing is mapped.

Reading is safe: a safetensors file by the format's own specification (8-byte header length, a JSON header,
raw little-endian data) with every offset checked; a .pth only through `torch.load(weights_only=True)`,
which refuses pickled objects other than tensors; never an unpickler of our own. torch and onnx are
imported only when such a file is read.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_HEADER = 100 << 20  # a safetensors header larger than this is not a weights file (the format's own limit)
SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}
# PyTorch's batch norm names for cnndsl's (the generated module's own batch norm uses cnndsl's)
TORCH_BN = {"running_mean": "mean", "running_var": "var"}
DROPPED = ("num_batches_tracked",)


class WeightFileError(ValueError):
    """A file that cannot be read as weights; `hint` says what to do."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    load: Callable[[], np.ndarray]  # the values, as float32


@dataclass
class WeightFile:
    path: str
    format: str  # "PyTorch state dict", "safetensors", "ONNX model", "NumPy .npz"
    tensors: list[Tensor]  # in the file's order
    dropped: list[str]  # names left out (`num_batches_tracked`)
    ordered: bool = True  # False where the format does not keep the model's order (safetensors)


# --- reading ------------------------------------------------------------------------------------


def sniff(path: str) -> str:
    """The format of a weights file: torch, safetensors, onnx or npz. An `.npz` is cnndsl's own format, read
    (and its defects reported) as one; any other file by its first bytes, whatever its suffix."""
    if path.lower().endswith(".npz"):
        return "npz"
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:2] == b"PK":  # a zip: an .npz, or PyTorch's zip checkpoint (it holds data.pkl)
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):  # a damaged zip: reported by its format's reader
            return "torch" if path.lower().endswith((".pth", ".pt", ".ckpt", ".bin")) else "npz"
        if any(n.endswith("data.pkl") for n in names):
            return "torch"
        return "npz"
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":  # a pickle: PyTorch's legacy checkpoint format
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if path.lower().endswith((".pth", ".pt", ".ckpt", ".bin")):
        return "torch"
    if path.lower().endswith(".onnx") or head[:1] == b"\x08":  # ONNX: a protobuf starting with ir_version
        return "onnx"
    return "unknown"


def read(path: str, limit: int = 2**34) -> WeightFile:
    """Read a weights file of any supported format (an .npz's arrays at most `limit` bytes). Raises
    WeightFileError, safeio.FileProblem (not a regular readable file), or OSError."""
    from . import safeio

    safeio.check_readable(path, "weights file")  # a FIFO or a device is refused before it is opened
    kind = sniff(path)
    if kind == "torch":
        return read_torch(path)
    if kind == "safetensors":
        return read_safetensors(path)
    if kind == "onnx":
        return read_onnx(path)
    if kind == "npz":
        return read_npz(path, limit)
    raise WeightFileError(f"`{path}` is not a weights file cnndsl reads",
                          hint="give a PyTorch state dict (.pth, .pt), a .safetensors file, an ONNX model or an .npz")


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def read_npz(path: str, limit: int = 2**34) -> WeightFile:
    """An .npz through cnndsl.archives: sizes from the headers, checked against `limit`, before any data."""
    import zipfile as zf_

    from .archives import ArchiveError, npz_members, read_member

    try:
        members = npz_members(path, limit)
    except ArchiveError as e:
        raise WeightFileError(str(e)) from None
    tensors = []
    for n, m in members.items():
        if m.dtype.kind not in "fiub":
            raise WeightFileError(f"`{path}`: array `{n}` holds {m.dtype}, not numbers")

        def load(m=m):
            with zf_.ZipFile(path) as z:
                try:
                    return _f32(read_member(z, m))
                except ArchiveError as e:
                    raise WeightFileError(str(e)) from None

        tensors.append(Tensor(n, tuple(m.shape), str(m.dtype), load))
    return _drop(WeightFile(path, "NumPy .npz", tensors, []))


def read_safetensors(path: str) -> WeightFile:
    """The safetensors format, read by its specification; every size and offset is checked before use."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise WeightFileError(f"`{path}` is too short for a safetensors file ({size} bytes)")
        n = int.from_bytes(raw, "little")
        if n > min(MAX_HEADER, size - 8):
            raise WeightFileError(f"`{path}`: the safetensors header says {n:,} bytes, but the file has "
                                  f"{size - 8:,} after the length")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightFileError(f"`{path}`: the safetensors header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise WeightFileError(f"`{path}`: the safetensors header is not a JSON object")
    data_start, data_size = 8 + n, size - 8 - n
    tensors = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"`{path}`: tensor `{name}`"
        if not isinstance(info, dict):
            raise WeightFileError(f"{where}: its header entry is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in SAFETENSORS_DTYPES:
            raise WeightFileError(f"{where}: dtype {dtype!r} is not one of {', '.join(SAFETENSORS_DTYPES)}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in shape):
            raise WeightFileError(f"{where}: shape {shape!r} is not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets) and 0 <= offsets[0] <= offsets[1]
                <= data_size):
            raise WeightFileError(f"{where}: data offsets {offsets!r} lie outside the {data_size:,} bytes of data")
        np_dtype = np.dtype(SAFETENSORS_DTYPES[dtype])
        if math.prod(shape) * np_dtype.itemsize != offsets[1] - offsets[0]:
            raise WeightFileError(f"{where}: shape {shape} of {dtype} needs {math.prod(shape) * np_dtype.itemsize:,} "
                                  f"bytes, its offsets give {offsets[1] - offsets[0]:,}")

        def load(path=path, start=data_start + offsets[0], shape=tuple(shape), dt=np_dtype, bf16=dtype == "BF16"):
            with open(path, "rb") as f:
                f.seek(start)
                a = np.fromfile(f, dtype=dt, count=math.prod(shape)).reshape(shape)
            if bf16:  # bfloat16 is the top half of a float32
                a = (a.astype(np.uint32) << 16).view(np.float32)
            return _f32(a)

        tensors.append((offsets[0], Tensor(name, tuple(shape), dtype, load)))
    tensors.sort(key=lambda t: t[0])  # the order of the data: the only order the format keeps
    return _drop(WeightFile(path, "safetensors file", [t for _, t in tensors], [], ordered=False))


def read_torch(path: str) -> WeightFile:
    try:
        import torch
    except ImportError:
        raise WeightFileError(
            f"`{path}` is a PyTorch checkpoint, and reading one needs PyTorch, which is not installed",
            hint="`pip install torch`, then again; or, where torch is, save the weights without pickle: "
                 "`safetensors.torch.save_file(model.state_dict(), \"w.safetensors\")` or "
                 "`numpy.savez(\"w.npz\", **{k: v.numpy() for k, v in model.state_dict().items()})`") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad or hostile file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise WeightFileError(
                f"`{path}` holds pickled Python objects besides tensors (a whole model?), which cnndsl does not load: "
                "`torch.load(weights_only=True)` refuses them",
                hint="save the state dict only: `torch.save(model.state_dict(), \"w.pth\")`") from None
        raise WeightFileError(f"`{path}` cannot be read as a PyTorch checkpoint: {first[:300]}") from None
    sd = _state_dict(obj)
    if sd is None:
        raise WeightFileError(f"`{path}` holds a {type(obj).__name__}, not a state dict of tensors",
                              hint="save `model.state_dict()` with torch.save")
    tensors = [Tensor(k, tuple(v.shape), str(v.dtype).removeprefix("torch."),
                      lambda v=v: _f32(v.detach().to(torch.float32).numpy())) for k, v in sd.items()]
    return _drop(WeightFile(path, "PyTorch state dict", tensors, []))


def _state_dict(obj):
    """The {name: tensor} of a checkpoint: the object itself, or its `state_dict` / `model` entry."""
    import torch

    def tensors(d) -> bool:
        return isinstance(d, dict) and bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                      for k, v in d.items())

    if tensors(obj):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "module", "net"):
            if tensors(obj.get(key)):
                return obj[key]
    return None


def read_onnx(path: str) -> WeightFile:
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(path)
    except Exception as e:  # noqa: BLE001 - protobuf and onnx raise their own untyped errors
        raise WeightFileError(f"`{path}` cannot be read as an ONNX model: {str(e).strip()[:300]}") from None
    tensors = []
    for t in proto.graph.initializer:
        if t.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                               onnx.TensorProto.BFLOAT16) or not t.dims:
            continue  # integer shapes and scalar constants of the graph, not weights
        tensors.append(Tensor(t.name, tuple(t.dims), onnx.TensorProto.DataType.Name(t.data_type).lower(),
                              lambda t=t: _f32(numpy_helper.to_array(t))))
    return _drop(WeightFile(path, "ONNX model", tensors, []))


def _drop(wf: WeightFile) -> WeightFile:
    keep = [t for t in wf.tensors if t.name.rsplit(".", 1)[-1] not in DROPPED]
    wf.dropped = [t.name for t in wf.tensors if t.name.rsplit(".", 1)[-1] in DROPPED]
    wf.tensors = keep
    return wf


# --- mapping ------------------------------------------------------------------------------------


@dataclass
class Mapping:
    pairs: list[tuple[str, Tensor]]  # (cnndsl name, the file's tensor), in the spec's order
    how: str  # "by name" or "by order and shape"


class MappingError(ValueError):
    """The file's tensors do not fit the spec's weights; `problems` lists each disagreement."""

    def __init__(self, message: str, problems: list[str], hint: str | None = None):
        super().__init__(message)
        self.problems, self.hint = problems, hint


def _shape(s: tuple[int, ...]) -> str:
    return "x".join(map(str, s)) if s else "scalar"


def _alias(name: str) -> str:
    head, _, last = name.rpartition(".")
    return f"{head}.{TORCH_BN[last]}" if last in TORCH_BN else name


def match(expected: list[tuple[str, tuple[int, ...]]], wf: WeightFile) -> Mapping:
    """Pair the file's tensors with the spec's weights (name, shape), by name if every name is there, else by order.

    Raises MappingError listing every disagreement; it never pairs tensors whose shapes differ.
    """
    want = dict(expected)
    by_name: dict[str, Tensor] = {}
    for t in wf.tensors:
        for cand in (t.name, _alias(t.name)):
            if cand in want and cand not in by_name:
                by_name[cand] = t
                break
    bn = {n[: -len(".scale")] for n in want if n.endswith(".scale")}
    for t in wf.tensors:  # PyTorch names a batch norm's scale `weight`
        head, _, last = t.name.rpartition(".")
        if last == "weight" and head in bn and f"{head}.scale" not in by_name:
            by_name[f"{head}.scale"] = t
    if len(by_name) == len(expected):
        problems = [f"`{n}`: the file's `{by_name[n].name}` is {_shape(by_name[n].shape)}, expected {_shape(s)}"
                    for n, s in expected if by_name[n].shape != s]
        used = {id(t) for t in by_name.values()}
        problems += [f"file `{t.name}` {_shape(t.shape)}: not a weight of this spec" for t in wf.tensors
                     if id(t) not in used]
        if problems:
            raise MappingError(f"`{wf.path}` names every weight of the spec, but {len(problems)} tensors do not fit",
                               problems)
        return Mapping([(n, by_name[n]) for n, _ in expected], "by name")
    found = [t.shape for t in wf.tensors]
    shapes = [s for _, s in expected]
    if found == shapes:
        return Mapping([(n, t) for (n, _), t in zip(expected, wf.tensors, strict=True)], "by order and shape")
    problems = []
    # NOTE: the two lists agree up to the first difference and after the last; only what lies between is aligned
    # by difflib, so that a report starts where the spec and the file part (shapes repeat in a CNN, and
    # difflib alone would place a missing block anywhere among equal ones)
    n_common = min(len(shapes), len(found))
    head = next((k for k, (a, b) in enumerate(zip(shapes, found, strict=False)) if a != b), n_common)
    tail = 0
    while tail < min(len(shapes), len(found)) - head and shapes[-1 - tail] == found[-1 - tail]:
        tail += 1
    sm = difflib.SequenceMatcher(None, shapes[head:len(shapes) - tail], found[head:len(found) - tail], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        i1, i2, j1, j2 = i1 + head, i2 + head, j1 + head, j2 + head
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            ours = f"#{i + 1} `{expected[i][0]}` {_shape(expected[i][1])}" if i < i2 else None
            theirs = f"#{j + 1} `{wf.tensors[j].name}` {_shape(wf.tensors[j].shape)}" if j < j2 else None
            if ours and theirs:
                problems.append(f"spec {ours} <> file {theirs}: shapes differ")
            elif ours:
                problems.append(f"spec {ours}: no tensor in the file at this place")
            else:
                problems.append(f"file {theirs}: no weight in the spec at this place")
    n, m = len(expected), len(wf.tensors)
    message = (f"`{wf.path}` ({wf.format}, {m} tensors) does not match the spec's {n} weights: "
               f"{len(problems)} disagreement{'s' if len(problems) != 1 else ''} in order and shape")
    hint = None
    if sorted(found) == sorted(shapes):
        hint = "the file holds tensors of the right shapes in another order, and shapes repeat, so cnndsl will " \
               "not guess which is which; "
        hint += ("safetensors keeps tensors sorted, not in the model's order: name them as `cnndsl weights` lists "
                 "them, or save the state dict as .pth or .npz" if not wf.ordered
                 else "name the tensors as `cnndsl weights` lists them")
    elif not wf.ordered and not by_name:
        hint = "safetensors keeps tensors sorted, not in the model's order: name them as `cnndsl weights` lists " \
               "them, or save the state dict as .pth or .npz"
    else:
        hint = "compare with `cnndsl weights SPEC`: the spec and the model that saved the file differ there"
    raise MappingError(message, problems, hint)


def save_npz(pairs: list[tuple[str, Tensor]], path: str) -> None:
    """Write the mapped tensors (float32, under cnndsl's names) as an .npz, atomically, one array at a time.

    Raises WeightFileError for a tensor whose data cannot be read (nothing is written then)."""
    import tempfile

    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, t in pairs:
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                try:
                    arr = t.load()
                except WeightFileError:
                    raise
                except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # a file damaged past its header
                    raise WeightFileError(f"tensor `{t.name}` cannot be read: {str(e)[:200]}") from None
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
