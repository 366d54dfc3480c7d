"""Summary backend: the per-layer table in the lecture notes' form (activation shape, activation size,
# parameters) plus MACs, as aligned text or as a stable JSON document."""

from __future__ import annotations

import json

from .. import __version__
from ..model import Model
from ..util import fmt_shape, human, prod
from .fold import fold, scope_title

JSON_SCHEMA_VERSION = 1


def shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def to_text(m: Model, collapse: bool = False, depth: int | None = None, batch: int = 1, dtype: str = "float32",
            optimizer: str = "sgd") -> str:
    """The table; with `collapse` or `depth`, folded blocks are one row each with their totals, as in
    `cnndsl render` (cnndsl.backends.fold). The memory lines are at `batch`, `dtype` and `optimizer`."""
    header = ("layer", "kind", "activation shape", "activation size", "# parameters", "MACs", "RF")
    rows = [("input", "input", shape_str(m.input_shape), f"{prod(m.input_shape):,}", "0", "0", _rf(m, "input"))]
    f = fold(m.graph, collapse, depth) if collapse or depth is not None else None
    for r in m.layers:
        if f is None or not f.is_folded(r.name):
            rows.append((r.name, r.label, shape_str(r.shape), f"{r.size:,}", f"{r.params:,}", f"{r.macs:,}",
                         _rf(m, r.name)))
            continue
        s = f.rep[r.name]
        if r.name != f.folded[s][0]:
            continue  # the folded scope's row stands where its first layer would
        shape, params, macs = f.totals(m.graph, s)
        k, n = f.times[s], len(f.folded[s])
        title = scope_title(m.graph.graph["scopes"], s) + (f" × {k}" if k > 1 else "")
        rows.append((s, f"{title}: {n} layers", shape_str(shape), f"{prod(shape):,}", f"{params:,}", f"{macs:,}",
                     _rf(m, _exit(m, f.folded[s]))))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}

    def line(row) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    t = m.totals
    out = [f"network {m.name}   input {fmt_shape(m.input_shape)}", "", line(header), rule]
    out += [line(r) for r in rows]
    out += [
        rule,
        f"parameters     {t.params:>16,}   trainable {t.trainable_params:,}, non-trainable {t.non_trainable_params:,}",
        f"MACs           {t.macs:>16,}   {human(t.macs)}MACs = {human(t.flops)}FLOPs (1 MAC = 2 FLOPs)",
    ]
    mem = memory_lines(m, batch, dtype, optimizer)
    cut = mem.index("")  # the totals, then torchinfo's sizes after a blank line
    out += mem[:cut] + ([f"outputs        {', '.join(m.outputs)}"] if len(m.outputs) > 1 else []) + mem[cut:]
    return "\n".join(out)


def _exit(m: Model, members: list[str]) -> str:
    """A folded block's last layer that feeds on (the one whose shape its row shows)."""
    inside, g = set(members), m.graph
    exits = [n for n in members if n in m.outputs or any(w not in inside for w in g.successors(n))]
    return (exits or members)[-1]


def _rf(m: Model, n: str) -> str:
    f = m.graph.nodes[n].get("rf")
    return f.text() if f is not None else "-"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f}"


def memory_lines(m: Model, batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> list[str]:
    """The footer: inference peak, then torchinfo's four sizes (MB = 10^6 bytes) with the training peak."""
    from ..analyses import memory

    inf = memory.inference(m.graph, batch, dtype)
    at = f"{dtype}, batch {batch}"
    out = [
        f"weights        {human(m.totals.params * memory.DTYPES[dtype], 'B'):>16}   {dtype}",
        f"activations    {human(inf.sum_bytes, 'B'):>16}   {at}, every layer's output",
        f"inference peak {human(inf.peak_bytes, 'B'):>16}   {at}, each tensor freed after its last use; at "
        f"`{inf.peak_layer}`",
    ]
    if m.rf is not None and m.rf.covers:
        shape = "x".join(map(str, m.input_shape[:2]))
        out.append(f"receptive field covers the whole {shape} input from `{m.rf.covers}` on")
    out.append("")
    if dtype == "int8":
        out.append(f"Input size (MB): {_mb(inf.input_bytes)}   Params size (MB): {_mb(m.totals.params)}   "
                   "(int8: inference only)")
        return out
    t = memory.training(m.graph, batch, dtype, optimizer)
    out += [
        f"Input size (MB): {_mb(t.input_bytes)}",
        f"Forward/backward pass size (MB): {_mb(t.saved)}   activations kept for backward, {at}",
        f"Params size (MB): {_mb(t.weights)}",
        f"Gradients + {optimizer} state (MB): {_mb(t.grads + t.optimizer_state)}",
        f"Estimated Total Size (MB): {_mb(t.input_bytes + t.total)}",
        f"Training peak (MB): {_mb(t.peak)}   one simulated step, {t.peak_at}",
    ]
    return out


def to_dict(m: Model, batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> dict:
    """The `--json` document. Keys are a contract: add new ones, never rename or remove."""
    t = m.totals
    return {
        "schema": JSON_SCHEMA_VERSION,
        "cnndsl": __version__,
        "network": m.name,
        "file": m.path,
        "input": {"name": m.graph.graph["input"], "shape": list(m.input_shape)},
        "outputs": list(m.outputs),
        "layers": [
            {
                "name": r.name, "op": r.op, "label": r.label, "inputs": list(r.inputs), "shape": list(r.shape),
                "size": r.size, "params": r.params, "trainable_params": r.trainable,
                "non_trainable_params": r.non_trainable, "macs": r.macs, "line": r.line, "col": r.col,
                "scope": r.scope, **_rf_json(m, r.name),
            }
            for r in m.layers
        ],
        "totals": {
            "params": t.params, "trainable_params": t.trainable_params, "non_trainable_params": t.non_trainable_params,
            "macs": t.macs, "flops": t.flops, "weight_bytes": t.weight_bytes, "activation_bytes": t.activation_bytes,
        },
        "receptive_field_covers_input": m.rf.covers if m.rf else None,
        "memory": memory_dict(m, batch, dtype, optimizer),
    }


def _rf_json(m: Model, n: str) -> dict:
    f = m.graph.nodes[n].get("rf")
    out: dict = {"rf": f.to_dict() if f is not None else None}
    if m.rf is not None and n in m.rf.declined:
        out["rf_declined"] = m.rf.declined[n]
    return out


def memory_dict(m: Model, batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> dict:
    """Bytes: the inference peak and, except for int8, the training figures."""
    from dataclasses import asdict

    from ..analyses import memory

    out: dict = {"inference": asdict(memory.inference(m.graph, batch, dtype))}
    if dtype != "int8":
        t = memory.training(m.graph, batch, dtype, optimizer)
        out["training"] = {**asdict(t), "total": t.total}
    return out


def to_json(m: Model, batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> str:
    return json.dumps(to_dict(m, batch, dtype, optimizer), indent=2)

