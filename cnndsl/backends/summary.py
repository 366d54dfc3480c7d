"""Summary backend: the per-layer table in the lecture notes' form (activation shape, activation size,
# parameters) plus MACs, as aligned text or as a stable JSON document.

The options shape the rows (`collapse`/`depth` fold blocks, as the diagrams do; `tree` shows the blocks
as a tree, torchinfo's layout) and add columns (`columns`: kernel, stride, padding, input, percent); the
text and the JSON document always show the same rows.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .. import __version__
from ..model import Model
from ..util import fmt_shape, human, prod
from .fold import Fold, fold, scope_chain, scope_title

JSON_SCHEMA_VERSION = 1
COLUMNS = ("kernel", "stride", "padding", "input", "percent")  # the optional columns, in their order


def shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


@dataclass
class Row:
    """One row of the table: a layer, or a block (folded into one row, or the head of its layers in a tree)."""

    name: str  # node id, or scope id for a block
    label: str
    shape: tuple
    size: int
    params: int
    macs: int
    kind: str = "layer"  # "layer" | "folded" (a block shown as one row) | "block" (a tree's block head)
    depth: int = 0  # nesting level (tree rows); top-level rows are 1
    index: str = ""  # torchinfo's depth-index, `2-1`: the first child at depth 2 (tree only)
    times: int = 1  # a folded run of identical blocks: how many
    layers: int = 1  # how many layers the row stands for
    attrs: dict = field(default_factory=dict)  # a layer's resolved parameters
    exit: str = ""  # the layer whose output the row shows (a block's last layer that feeds on): its RF
    inputs: tuple = ()
    children: list = field(default_factory=list, repr=False)


def _jsonable(v):
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if dataclasses.is_dataclass(v):
        return getattr(v, "text", None) or str(v)
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def _members(m: Model) -> dict[str, list[str]]:
    """Scope id -> every layer inside it (at any depth), in order."""
    scopes = m.layer_graph.graph.get("scopes", {})
    out: dict[str, list[str]] = {}
    for r in m.layers:
        for s in scope_chain(scopes, r.scope):
            out.setdefault(s, []).append(r.name)
    return out


def _scope_row(m: Model, s: str, members: list[str], kind: str, times: int = 1) -> Row:
    g = m.layer_graph
    inside = set(members)
    outs = set(m.outputs)
    exits = [n for n in members if n in outs or any(w not in inside for w in g.successors(n))]
    shape = g.nodes[(exits or members)[-1]]["shape"]
    title = scope_title(g.graph["scopes"], s) + (f" × {times}" if times > 1 else "")
    return Row(s, title, shape, prod(shape), sum(g.nodes[n]["params"] for n in members),
               sum(g.nodes[n]["macs"] for n in members), kind=kind, times=times, layers=len(members),
               exit=(exits or members)[-1])


def rows(m: Model, collapse: bool = False, depth: int | None = None, tree: bool = False) -> list[Row]:
    """The table's rows for these options (the input row excluded). With `tree`, the top-level rows,
    each holding its `children`; otherwise a flat list."""
    g = m.layer_graph
    f: Fold | None = fold(g, collapse, depth) if collapse or depth is not None else None
    scopes = g.graph.get("scopes", {})
    members = _members(m) if tree else {}
    top: list[Row] = []
    open_rows: dict[str, Row] = {}  # tree: scope id -> its head row

    def home(scope: str, level_parent: str) -> list[Row]:
        """The list a row in `scope` goes into: its innermost open (not folded) ancestor's children."""
        if not tree:
            return top
        parent_list = top
        for s in scope_chain(scopes, scope):
            if f is not None and s in f.folded:
                break
            if s not in open_rows:
                head = _scope_row(m, s, members[s], "block")
                open_rows[s] = head
                parent_list.append(head)
            parent_list = open_rows[s].children
        return parent_list

    for r in m.layers:
        if f is None or not f.is_folded(r.name):
            row = Row(r.name, r.label, r.shape, r.size, r.params, r.macs, attrs=_jsonable(g.nodes[r.name]["attrs"]),
                      inputs=r.inputs)
            home(r.scope, "").append(row)
            continue
        s = f.rep[r.name]
        if r.name != f.folded[s][0]:
            continue  # the folded scope's row stands where its first layer would
        row = _scope_row(m, s, f.folded[s], "folded", f.times[s])
        home(scopes[s]["parent"], "").append(row)

    if tree:
        def number(children: list[Row], level: int) -> None:
            for i, c in enumerate(children, 1):
                c.depth, c.index = level, f"{level}-{i}"
                number(c.children, level + 1)
        number(top, 1)
    return top


def _flatten(rs: list[Row]) -> list[Row]:
    out = []
    for r in rs:
        out.append(r)
        out += _flatten(r.children)
    return out


def _pair(v) -> str:
    if isinstance(v, tuple | list) and len(v) == 2:
        return f"{v[0]}" if v[0] == v[1] else f"{v[0]}x{v[1]}"
    if isinstance(v, tuple | list) and len(v) == 4:  # pads (top, left, bottom, right)
        return _pair(v[:2]) if tuple(v[:2]) == tuple(v[2:]) else ",".join(map(str, v))
    return "" if v is None else str(v)


def _extra(m: Model, r: Row, col: str) -> str:
    a = r.attrs
    if col == "kernel":
        f = a.get("f")
        return "" if f is None else (f"{f[0]}x{f[1]}" if isinstance(f, list | tuple) else str(f))
    if col == "stride":
        return _pair(a.get("s")) if "s" in a else ""
    if col == "padding":
        return _pair(a.get("p")) if "p" in a else ""
    if col == "input":
        if r.kind != "layer":
            return ""
        return " + ".join(shape_str(m.layer_graph.nodes[i]["shape"]) for i in r.inputs)
    if col == "percent":
        total = m.totals.params
        return f"{100 * r.params / total:.2f}%" if total and r.params else ("0%" if total else "")
    raise ValueError(f"unknown column {col!r}")


def _fit(widths: list[int], width: int | None, shrink: list[int], least: int = 12) -> list[int]:
    """Narrow the `shrink` columns, the widest first, until a line fits `width` (none below `least`)."""
    if width is None:
        return widths
    widths = list(widths)
    over = sum(widths) + 2 * (len(widths) - 1) - width
    while over > 0:
        i = max(shrink, key=lambda j: widths[j])
        if widths[i] <= least:
            break
        widths[i] -= 1
        over -= 1
    return widths


def _clip(text: str, w: int, left: bool = False) -> str:
    if len(text) <= w:
        return text
    return ("…" + text[-(w - 1):]) if left else (text[: w - 1] + "…")


def to_text(m: Model, collapse: bool = False, depth: int | None = None, tree: bool = False,
            columns: list[str] | tuple = (), width: int | None = None, batch: int = 1, dtype: str = "float32",
            optimizer: str = "sgd") -> str:
    """The table; with `collapse` or `depth`, folded blocks are one row each with their totals, as in
    `cnndsl render` (cnndsl.backends.fold); `tree` indents the layers under their blocks; `columns` adds
    optional columns (COLUMNS); `width` narrows the name and kind columns to fit a terminal. The RF column
    is each row's receptive field (cnndsl.analyses.receptive); the memory lines are at `batch`, `dtype` and
    `optimizer` (cnndsl.analyses.memory)."""
    columns = [c for c in COLUMNS if c in columns]
    header = ["layer", "kind", *[c if c != "percent" else "% params" for c in columns if c != "input"],
              *(["input shape"] if "input" in columns else []),
              "activation shape", "activation size", "# parameters", "MACs", "RF"]
    extras = [c for c in columns if c != "input"] + (["input"] if "input" in columns else [])
    top = rows(m, collapse, depth, tree)
    scopes = m.layer_graph.graph.get("scopes", {})
    table = [["input", "input", *["" for _ in extras], shape_str(m.input_shape), f"{prod(m.input_shape):,}", "0",
              "0", _rf(m, m.layer_graph.graph["input"])]]

    def add(rs: list[Row], prefix: str) -> None:
        for i, r in enumerate(rs):
            last = i == len(rs) - 1
            if tree:  # torchinfo's `├─conv2_x: 1-3`, the block's call in the kind column
                name = prefix + ("└─" if last else "├─") + r.name.rsplit(".", 1)[-1] + f": {r.index}"
                call = scopes[r.name]["label"] + (f" × {r.times}" if r.times > 1 else "") if r.kind != "layer" else ""
                label = r.label if r.kind == "layer" else f"{call}: {r.layers} layers"
            else:
                name = r.name
                label = r.label if r.kind == "layer" else f"{r.label}: {r.layers} layers"
            table.append([name, label, *[_extra(m, r, c) for c in extras], shape_str(r.shape), f"{r.size:,}",
                          f"{r.params:,}", f"{r.macs:,}", _rf(m, r.exit or r.name)])
            if tree:
                add(r.children, prefix + ("  " if last else "│ "))

    add(top, "")
    if tree:
        table[0][0] = m.name
    widths = [max(len(row[i]) for row in table + [header]) for i in range(len(header))]
    widths = _fit(widths, width, shrink=[0, 1])
    left = {0, 1}

    def line(row) -> str:
        cells = []
        for i, (c, w) in enumerate(zip(row, widths, strict=True)):
            c = _clip(c, w, left=(i == 0 and not tree))
            cells.append(c.ljust(w) if i in left else c.rjust(w))
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    t = m.totals
    out = [f"network {m.name}   input {fmt_shape(m.input_shape)}", "", line(header), rule]
    out += [line(r) for r in table]
    out += [
        rule,
        f"parameters     {t.params:>16,}   trainable {t.trainable_params:,}, non-trainable {t.non_trainable_params:,}",
        f"MACs           {t.macs:>16,}   {human(t.macs, 'MACs')} = {human(t.flops, 'FLOPs')} (1 MAC = 2 FLOPs)",
    ]
    mem = memory_lines(m, batch, dtype, optimizer)
    cut = mem.index("")  # the totals, then torchinfo's sizes after a blank line
    out += mem[:cut] + ([f"outputs        {', '.join(m.outputs)}"] if len(m.outputs) > 1 else []) + mem[cut:]
    return "\n".join(out)


def _row_dict(m: Model, r: Row, columns: list[str]) -> dict:
    d = {"name": r.name, "kind": r.kind, "label": r.label, "shape": list(r.shape), "size": r.size,
         "params": r.params, "macs": r.macs, "layers": r.layers}
    d["rf"] = _rf_json(m, r.exit or r.name)["rf"]
    if r.kind == "folded":
        d["times"] = r.times
    if r.depth:
        d["depth"], d["index"] = r.depth, r.index
    for c in columns:
        d[c] = _extra(m, r, c)
    if r.children:
        d["children"] = [_row_dict(m, c, columns) for c in r.children]
    return d


def to_dict(m: Model, collapse: bool = False, depth: int | None = None, tree: bool = False,
            columns: list[str] | tuple = (), batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> dict:
    """The `--json` document. Keys are a contract: add new ones, never rename or remove.

    `layers` always lists every layer with its resolved parameters (`attrs`); `options` records the
    options and `rows` the table's rows for them (nested under `children` with `tree`)."""
    t = m.totals
    g = m.layer_graph
    columns = [c for c in COLUMNS if c in columns]
    return {
        "schema": JSON_SCHEMA_VERSION,
        "cnndsl": __version__,
        "network": m.name,
        "file": m.path,
        "input": {"name": g.graph["input"], "shape": list(m.input_shape)},
        "outputs": list(m.outputs),
        "options": {"collapse": collapse, "depth": depth, "tree": tree, "columns": columns, "batch": batch,
                    "dtype": dtype, "optimizer": optimizer},
        "layers": [
            {
                "name": r.name, "op": r.op, "label": r.label, "inputs": list(r.inputs), "shape": list(r.shape),
                "size": r.size, "params": r.params, "trainable_params": r.trainable,
                "non_trainable_params": r.non_trainable, "macs": r.macs, "line": r.line, "col": r.col,
                "scope": r.scope, "attrs": _jsonable(g.nodes[r.name]["attrs"]), **_rf_json(m, r.name),
            }
            for r in m.layers
        ],
        "rows": [_row_dict(m, r, columns) for r in rows(m, collapse, depth, tree)],
        "totals": {
            "params": t.params, "trainable_params": t.trainable_params, "non_trainable_params": t.non_trainable_params,
            "macs": t.macs, "flops": t.flops, "weight_bytes": t.weight_bytes, "activation_bytes": t.activation_bytes,
        },
        "receptive_field_covers_input": m.rf.covers if m.rf else None,
        "memory": memory_dict(m, batch, dtype, optimizer),
    }


def _rf(m: Model, n: str) -> str:
    f = m.layer_graph.nodes[n].get("rf")
    return f.text() if f is not None else "-"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f}"


def memory_lines(m: Model, batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> list[str]:
    """The footer: inference peak, then torchinfo's four sizes (MB = 10^6 bytes) with the training peak."""
    from ..analyses import memory

    inf = memory.inference(m.layer_graph, batch, dtype)
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
    t = memory.training(m.layer_graph, batch, dtype, optimizer)
    out += [
        f"Input size (MB): {_mb(t.input_bytes)}",
        f"Forward/backward pass size (MB): {_mb(t.saved)}   activations kept for backward, {at}",
        f"Params size (MB): {_mb(t.weights)}",
        f"Gradients + {optimizer} state (MB): {_mb(t.grads + t.optimizer_state)}",
        f"Estimated Total Size (MB): {_mb(t.input_bytes + t.total)}",
        f"Training peak (MB): {_mb(t.peak)}   one simulated step, {t.peak_at}",
    ]
    return out


def _rf_json(m: Model, n: str) -> dict:
    f = m.layer_graph.nodes[n].get("rf")
    out: dict = {"rf": f.to_dict() if f is not None else None}
    if m.rf is not None and n in m.rf.declined:
        out["rf_declined"] = m.rf.declined[n]
    return out


def memory_dict(m: Model, batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> dict:
    """Bytes: the inference peak and, except for int8, the training figures."""
    from dataclasses import asdict

    from ..analyses import memory

    out: dict = {"inference": asdict(memory.inference(m.layer_graph, batch, dtype))}
    if dtype != "int8":
        t = memory.training(m.layer_graph, batch, dtype, optimizer)
        out["training"] = {**asdict(t), "total": t.total}
    return out


def to_json(m: Model, **options) -> str:
    return json.dumps(to_dict(m, **options), indent=2)
