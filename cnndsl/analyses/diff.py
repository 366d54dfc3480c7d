"""`cnndsl diff A.cnn B.cnn`: what changed between two networks, layer by layer.

A pure function of two checked Models. Layers are matched by name first (cnndsl's hierarchical names,
`conv3_x.basic2.residual1.conv1`, are stable under edits elsewhere in the spec), then the layers left
over are matched by structure (the same kind, parameters and shape in the same order, as difflib aligns
lines), which catches a renamed value. Every matched pair gets its deltas (shape, parameters, MACs);
what is left is added or removed, and a block (a scope: block call, residual, branches, repeat, named
value) whose layers are all added or all removed is reported as one block.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

from ..backends.fold import scope_chain, scope_title


@dataclass
class Pair:
    """A layer of A and/or B; `status` is same, changed, renamed, added or removed."""

    status: str
    old: str | None
    new: str | None
    old_label: str = ""
    new_label: str = ""
    old_shape: tuple[int, ...] = ()
    new_shape: tuple[int, ...] = ()
    d_params: int = 0
    d_trainable: int = 0
    d_macs: int = 0

    def to_dict(self) -> dict:
        return {"status": self.status, "old": self.old, "new": self.new, "old_label": self.old_label,
                "new_label": self.new_label, "old_shape": list(self.old_shape), "new_shape": list(self.new_shape),
                "d_params": self.d_params, "d_trainable_params": self.d_trainable, "d_macs": self.d_macs}


@dataclass
class Block:
    """A whole scope added to B or removed from A."""

    name: str
    title: str
    layers: int
    params: int
    trainable: int
    macs: int


@dataclass
class Diff:
    old: str
    new: str
    pairs: list[Pair]
    added_blocks: list[Block] = field(default_factory=list)
    removed_blocks: list[Block] = field(default_factory=list)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (A, B)

    @property
    def differs(self) -> bool:
        return any(p.status != "same" for p in self.pairs) or any(a != b for a, b in self.totals.values())


def _row_key(r) -> tuple:
    return (r.op, r.label, r.shape)


def diff(a, b) -> Diff:
    """Match A's layers to B's and measure every difference."""
    ra = {r.name: r for r in a.layers}
    rb = {r.name: r for r in b.layers}
    matched: dict[str, tuple[str, str]] = {}  # A name -> (B name, how)
    for n in ra:
        if n in rb:
            matched[n] = (n, "name")
    left_a = [r for r in a.layers if r.name not in matched]
    taken = {m for m, _ in matched.values()}
    left_b = [r for r in b.layers if r.name not in taken]
    sm = difflib.SequenceMatcher(a=[_row_key(r) for r in left_a], b=[_row_key(r) for r in left_b], autojunk=False)
    for blk in sm.get_matching_blocks():
        for k in range(blk.size):
            matched[left_a[blk.a + k].name] = (left_b[blk.b + k].name, "structure")
    taken = {m for m, _ in matched.values()}

    pairs: list[Pair] = []  # in B's order, with A's removed layers where they stood
    a_index = {n: i for i, n in enumerate(ra)}
    by_b = {m: (n, how) for n, (m, how) in matched.items()}
    removed = [n for n in ra if n not in matched]
    pending_removed = list(removed)
    for r in b.layers:
        # A's removed layers that came before this layer's partner in A go first
        if r.name in by_b:
            partner = by_b[r.name][0]
            while pending_removed and a_index[pending_removed[0]] < a_index[partner]:
                pairs.append(_removed(ra[pending_removed.pop(0)]))
            o = ra[partner]
            status = "same"
            if by_b[r.name][1] == "structure":
                status = "renamed"
            elif (o.label, o.shape, o.params, o.macs) != (r.label, r.shape, r.params, r.macs):
                status = "changed"
            pairs.append(Pair(status, o.name, r.name, o.label, r.label, o.shape, r.shape, r.params - o.params,
                              r.trainable - o.trainable, r.macs - o.macs))
        else:
            pairs.append(Pair("added", None, r.name, "", r.label, (), r.shape, r.params, r.trainable, r.macs))
    pairs += [_removed(ra[n]) for n in pending_removed]

    ta, tb = a.totals, b.totals
    totals = {
        "layers": (len(a.layers), len(b.layers)),
        "params": (ta.params, tb.params),
        "trainable_params": (ta.trainable_params, tb.trainable_params),
        "non_trainable_params": (ta.non_trainable_params, tb.non_trainable_params),
        "macs": (ta.macs, tb.macs),
        "activation_bytes": (ta.activation_bytes, tb.activation_bytes),
    }
    return Diff(a.path, b.path, pairs, _blocks(b, {p.new for p in pairs if p.status == "added"}),
                _blocks(a, set(removed)), totals)


def _removed(o) -> Pair:
    return Pair("removed", o.name, None, o.label, "", o.shape, (), -o.params, -o.trainable, -o.macs)


def _blocks(m, names: set[str]) -> list[Block]:
    """The outermost scopes whose layers are all in `names`."""
    if not names:
        return []
    g = m.layer_graph
    scopes = g.graph.get("scopes", {})
    members: dict[str, list[str]] = {}
    for r in m.layers:
        for s in scope_chain(scopes, g.nodes[r.name]["scope"]):
            members.setdefault(s, []).append(r.name)
    whole = {s for s, ls in members.items() if all(n in names for n in ls)}
    out = []
    for s in members:
        if s in whole and not any(p in whole for p in scope_chain(scopes, scopes[s]["parent"])):
            rows = [m.layer(n) for n in members[s]]
            out.append(Block(s, scope_title(scopes, s), len(rows), sum(r.params for r in rows),
                             sum(r.trainable for r in rows), sum(r.macs for r in rows)))
    return out


def _shape(s) -> str:
    return "x".join(map(str, s)) if s else "-"


def _signed(v: int) -> str:
    return f"{v:+,}" if v else "0"


def to_text(d: Diff) -> str:
    out = [f"--- {d.old}", f"+++ {d.new}", ""]
    shown = [p for p in d.pairs if p.status != "same"]
    if shown:
        rows = [("", "layer", "kind", "shape", "Δ parameters", "Δ MACs")]
        for p in shown:
            mark = {"added": "+", "removed": "-", "changed": "~", "renamed": "→"}[p.status]
            name = p.new or p.old or ""
            if p.status == "renamed":
                name = f"{p.old} → {p.new}"
            label = p.new_label if p.status == "added" else p.old_label if p.status == "removed" else (
                p.new_label if p.old_label == p.new_label else f"{p.old_label} → {p.new_label}")
            shape = _shape(p.new_shape if p.status != "removed" else p.old_shape)
            if p.status in ("changed", "renamed") and p.old_shape != p.new_shape:
                shape = f"{_shape(p.old_shape)} → {_shape(p.new_shape)}"
            rows.append((mark, name, label, shape, _signed(p.d_params), _signed(p.d_macs)))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            out.append("  ".join(c.rjust(w) if i >= 4 else c.ljust(w) for i, (c, w) in
                                 enumerate(zip(r, widths, strict=True))).rstrip())
        out.append("")
    else:
        out += ["no layer differs", ""]
    for what, blocks, sign in (("added", d.added_blocks, "+"), ("removed", d.removed_blocks, "-")):
        if blocks:  # one row each, in network order, so that they read by stage
            out.append(f"{what} blocks:")
            rows = [(bl.name, _block_title(bl), f"{bl.layers} layers", f"{sign}{bl.params:,} parameters")
                    for bl in blocks]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            out += ["  " + "  ".join(c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in
                                     enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]
            out.append("")
    counts = {s: sum(p.status == s for p in d.pairs) for s in ("same", "changed", "renamed", "added", "removed")}
    out.append(", ".join(f"{v} {k}" for k, v in counts.items() if v) + " layers")
    for key, (x, y) in d.totals.items():
        label = key.replace("_", " ")
        out.append(f"{label:<22} {x:>16,} → {y:>16,}   {_signed(y - x)}")
    return "\n".join(out)


def _block_title(b: Block) -> str:
    """`basic(n=64)`, without the `name = ` that the row's first column already shows."""
    last = b.name.rsplit(".", 1)[-1]
    return b.title.split(" = ", 1)[1] if b.title.startswith(last + " = ") else b.title


def to_json(d: Diff) -> str:
    return json.dumps({
        "old": d.old, "new": d.new, "differs": d.differs,
        "layers": [p.to_dict() for p in d.pairs],
        "added_blocks": [vars(b) for b in d.added_blocks],
        "removed_blocks": [vars(b) for b in d.removed_blocks],
        "totals": {k: {"old": x, "new": y, "delta": y - x} for k, (x, y) in d.totals.items()},
    }, indent=2, ensure_ascii=False)
