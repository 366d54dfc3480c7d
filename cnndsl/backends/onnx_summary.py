"""`cnndsl summary MODEL.onnx`: a table of any ONNX model, cnndsl's or not, node by node: operator, output
shape (from onnx's shape inference, in ONNX's layout), parameters (the initializers a node reads, each
counted once) and MACs for the operators that do multiply-accumulates (Conv, ConvTranspose, Gemm, MatMul),
counted as cnndsl counts its own layers. Imports onnx, so only this command loads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..util import human


class OnnxFileError(ValueError):
    """The file is not an ONNX model onnx can read."""


@dataclass
class NodeRow:
    name: str
    op: str
    shape: list  # ints, or strings for symbolic dimensions such as the batch `N`
    params: int
    macs: int


@dataclass
class OnnxSummary:
    path: str
    name: str
    producer: str
    opset: int | None
    inputs: list[tuple[str, list]]
    outputs: list[tuple[str, list]]
    rows: list[NodeRow] = field(default_factory=list)
    shapes_known: bool = True

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def to_dict(self) -> dict:
        return {
            "file": self.path, "network": self.name, "producer": self.producer, "opset": self.opset,
            "inputs": [{"name": n, "shape": s} for n, s in self.inputs],
            "outputs": [{"name": n, "shape": s} for n, s in self.outputs],
            "nodes": [{"name": r.name, "op": r.op, "shape": r.shape, "params": r.params, "macs": r.macs}
                      for r in self.rows],
            "totals": {"params": self.params, "macs": self.macs, "flops": 2 * self.macs,
                       "weight_bytes": 4 * self.params},
        }

    def to_text(self, width: int | None = None) -> str:
        from .summary import _clip, _fit

        head = ["node", "op", "output shape (ONNX layout)", "# parameters", "MACs"]
        table = [[r.name, r.op, _dims(r.shape), f"{r.params:,}", f"{r.macs:,}"] for r in self.rows]
        widths = [max(len(x[i]) for x in [head, *table]) for i in range(len(head))]
        widths = _fit(widths, width, shrink=[0, 1])

        def line(row) -> str:
            return "  ".join(_clip(c, w, left=i == 0).ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

        rule = "-" * len(line(head))
        ins = ", ".join(f"`{n}` {_dims(s)}" for n, s in self.inputs)
        outs = ", ".join(f"`{n}` {_dims(s)}" for n, s in self.outputs)
        out = [f"onnx model {self.name}   {self.producer or 'unknown producer'}, opset {self.opset}",
               f"inputs {ins}   outputs {outs}", "", line(head), rule, *[line(r) for r in table], rule,
               f"parameters     {self.params:>16,}   initializers read by the nodes ({len(self.rows)} nodes)",
               f"MACs           {self.macs:>16,}   {human(self.macs, 'MACs')} = {human(2 * self.macs, 'FLOPs')} "
               f"(Conv, ConvTranspose, Gemm, MatMul; batch 1)",
               f"weights        {human(4 * self.params, 'B'):>16}   float32"]
        if not self.shapes_known:
            out.append("note: onnx's shape inference failed on this model, so some shapes and MACs are missing")
        return "\n".join(out)


def _dims(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape else "?"


def _shape_of(vi) -> list:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def summarize(path: str | Path, input_shape: tuple[int, ...] | None = None) -> OnnxSummary:
    """Read an .onnx file (external weights are not loaded: their shapes are in the model) and tally it."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise OnnxFileError(f"`{path}` is not an ONNX model onnx can read ({type(e).__name__})") from None
    except OSError as e:
        raise OnnxFileError(f"cannot read `{path}`: {e.strerror or e}") from None
    if not model.graph.node and not model.graph.input:
        raise OnnxFileError(f"`{path}` holds no ONNX graph")
    known = True
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - a custom op or a malformed model: tally what can be read
        inferred, known = model, False
    g = inferred.graph
    inits = {t.name: list(t.dims) for t in g.initializer}
    shapes = {vi.name: _shape_of(vi) for vi in [*g.input, *g.value_info, *g.output]}
    shapes.update(inits)
    inputs = [(vi.name, _shape_of(vi)) for vi in g.input if vi.name not in inits]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    s = OnnxSummary(str(path), g.name or Path(path).stem, f"{model.producer_name} {model.producer_version}".strip(),
                    opset, inputs, [(vi.name, _shape_of(vi)) for vi in g.output], shapes_known=known)
    seen: set[str] = set()
    for i, node in enumerate(g.node):
        params = 0
        for name in node.input:
            if name in inits and name not in seen:
                seen.add(name)
                params += math.prod(inits[name])
        out = shapes.get(node.output[0], []) if node.output else []
        s.rows.append(NodeRow(node.name or f"{node.op_type}_{i}", node.op_type, out, params,
                              _macs(node, shapes, out)))
    return s


def _ints(shape) -> list[int] | None:
    """The dimensions after the batch, when they are all known."""
    rest = shape[1:]
    return rest if rest and all(isinstance(d, int) for d in rest) else None


def _macs(node, shapes: dict, out: list) -> int:
    """MACs per batch item, as cnndsl counts its layers (bias and activations not counted)."""
    ins = [shapes.get(n, []) for n in node.input]
    o = _ints(out)
    if node.op_type == "Conv" and o and len(ins) > 1 and ins[1]:
        return math.prod(o) * math.prod(ins[1][1:])  # output positions x filters x (C/g x kh x kw)
    if node.op_type == "ConvTranspose" and len(ins) > 1 and ins[1] and _ints(ins[0]):
        return math.prod(_ints(ins[0])[1:]) * math.prod(ins[1])  # per input pixel: C_in x C_out/g x kh x kw
    if node.op_type == "Gemm" and len(ins) > 1 and len(ins[1]) == 2:
        return math.prod(ins[1])
    if node.op_type == "MatMul" and o and len(ins) > 1 and ins[0] and isinstance(ins[0][-1], int):
        return math.prod(o) * ins[0][-1]
    return 0
