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


def to_text(m: Model, collapse: bool = False, depth: int | None = None) -> str:
    """The table; with `collapse` or `depth`, folded blocks are one row each with their totals, as in
    `cnndsl render` (cnndsl.backends.fold)."""
    header = ("layer", "kind", "activation shape", "activation size", "# parameters", "MACs")
    rows = [("input", "input", shape_str(m.input_shape), f"{prod(m.input_shape):,}", "0", "0")]
    f = fold(m.graph, collapse, depth) if collapse or depth is not None else None
    for r in m.layers:
        if f is None or not f.is_folded(r.name):
            rows.append((r.name, r.label, shape_str(r.shape), f"{r.size:,}", f"{r.params:,}", f"{r.macs:,}"))
            continue
        s = f.rep[r.name]
        if r.name != f.folded[s][0]:
            continue  # the folded scope's row stands where its first layer would
        shape, params, macs = f.totals(m.graph, s)
        k, n = f.times[s], len(f.folded[s])
        title = scope_title(m.graph.graph["scopes"], s) + (f" × {k}" if k > 1 else "")
        rows.append((s, f"{title}: {n} layers", shape_str(shape), f"{prod(shape):,}", f"{params:,}", f"{macs:,}"))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    right = {2, 3, 4, 5}

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
        f"weights        {human(t.weight_bytes, 'B'):>16}   float32",
        f"activations    {human(t.activation_bytes, 'B'):>16}   float32, batch 1, every layer's output",
    ]
    if len(m.outputs) > 1:
        out.append(f"outputs        {', '.join(m.outputs)}")
    return "\n".join(out)


def to_dict(m: Model) -> dict:
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
                "scope": r.scope,
            }
            for r in m.layers
        ],
        "totals": {
            "params": t.params, "trainable_params": t.trainable_params, "non_trainable_params": t.non_trainable_params,
            "macs": t.macs, "flops": t.flops, "weight_bytes": t.weight_bytes, "activation_bytes": t.activation_bytes,
        },
    }


def to_json(m: Model) -> str:
    return json.dumps(to_dict(m), indent=2)
