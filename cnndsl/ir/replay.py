"""Block calls expanded once and replayed: the second call of a block with the same arguments (on an input
of the same shape, where the block reads shapes) records what the expansion added to the graph; later
calls add the same nodes, edges, scopes and annotations under their own names instead of running the
block's statements again.

Why: a deep network is a block called hundreds of times from a `repeat` (`bottleneck_stage(64, 500)`,
`repeat 1000 { mbconv(32) }`), and the editor checks it on every keystroke. Running a block's body means
evaluating every argument and resolving every layer's parameters against the registry; replaying it is
a copy of the nodes it made, about ten times faster.

Why it is the same graph: inside a block, only the block's parameters, its file's constants and
defaults, and the shape of its input are visible (cnndsl.ir.expand.call_block); a named value of the
caller can only come in as an argument, and calls with such arguments are not replayed. Everything a call
adds is named under its own scope (`stage.bottleneck3.conv1`), so the nodes of another call of the same
template differ only in that prefix, in the scope the call is made in (the parent of its own scope), in
where the call is written (its entry in `calls`, and its scope's line and column) and in the block calls
the caller is in (the outer part of `calls`): the template holds names relative to the call's scope and
the others as placeholders (`OUTER`), filled in by each replay. The key
(`key`) holds the rest; the recording (`record_call`) is refused where any assumption does not hold:
a diagnostic, a dead layer, a name that had to be made unique, a node whose input comes from anywhere
but the call's input, a counter of the caller's that moved. A replay is refused
where the graph already has one of its names or where a limit (layers, expansion work, function calls,
`range` numbers, errors) would be crossed: the call then runs as written, and stops where it would have
stopped. tests/test_replay.py builds every spec with and without replays and compares the graphs.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from ..layers import Act
from ..records import record
from .core import DEAD, MAX_ERRORS

if TYPE_CHECKING:
    from ..diagnostics import Span
    from .core import BlockDef, Core, Naming

_SCALARS = (int, float, bool, str)
OUTER = ("outer scope",)  # in a template: the scope the call is made in (the caller's), whatever it is


def _frozen(v: Any):
    """A block argument as a key: its type and its written form (so 1, 1.0 and true differ, as do 0.0
    and -0.0), or None where it is not a plain number, word or size (lists and activations are not
    replayed)."""
    t = type(v)
    if t in _SCALARS or (isinstance(v, str) and not isinstance(v, Act)):
        return (t, repr(v))
    if t is tuple and all(type(x) is int for x in v):
        return (t, v)
    return None


def key(b: Core, block: BlockDef, bound: dict, tensors: dict, current: str):
    """What a call's expansion depends on, or None when the call is not replayed; the shape of its input
    too, where the block reads shapes (`channels()`): the template says so (`Template.shape`)."""
    if tensors or current == DEAD or b.replays is None:
        return None
    args = []
    for name, v in bound.items():
        f = _frozen(v)
        if f is None:
            return None
        args.append((name, f))
    return (id(block), tuple(args))


@record
class Template:
    """What one call added, with names relative to its scope (`.conv1` under `stage.bottleneck2`)."""

    nodes: tuple  # (relative id, op, attrs, span, line, col, scope (relative, or OUTER), inner calls, role)
    edges: tuple  # per node: ((relative source, or None for the call's input), slot), ...
    scopes: tuple  # (relative id, entry with `parent` relative, or OUTER)
    annotations: tuple  # (relative id, dims, span, inner calls)
    out: tuple  # the call's value, relative (or None for the call's input)
    here: tuple
    shape: tuple | None  # the input's shape, where the expansion read a shape (else any input will do)
    shapes: tuple | None  # then the shape of each node (as Core.shape_of gives it), else None
    work: int
    fn_count: int
    items: int


class Mark:
    """The builder's counters before a call that may be recorded."""

    __slots__ = ("nodes", "scopes", "annotations", "diags", "dead", "warned", "work", "fn_count", "items",
                 "counters", "calls", "shape_reads")

    def __init__(self, b: Core, naming: Naming) -> None:
        g = b.g
        self.nodes, self.scopes = len(g), len(g.graph["scopes"])
        self.annotations, self.diags, self.dead = len(g.graph["annotations"]), len(b.diags), len(b.dead)
        self.warned, self.work, self.fn_count, self.items = len(b.warned), b.work, b.fn_count, b.items
        self.counters = dict(naming.counters)
        self.calls = len(b.calls)
        self.shape_reads = b.shape_reads


def _last(d: dict, k: int) -> list:
    """The last k keys of a dict, in insertion order (without walking the others)."""
    return list(islice(reversed(d), k))[::-1]


def fresh(b: Core, scope: str) -> bool:
    """Whether no node or scope is named `scope` yet (so none is named under it)."""
    return scope not in b.g and scope not in b.g.graph["scopes"]


def start(b: Core, k, scope: str, naming: Naming) -> Mark | None:
    """Before a call runs as written: a Mark when this is the second call with key `k` (the first is only
    counted: most calls of a spec written out in full never repeat)."""
    if k is None or not fresh(b, scope):
        return None
    seen = b.replays.get(k, 0)
    if seen != 1:
        if seen == 0:
            b.replays[k] = 1
        return None
    return Mark(b, naming)


def record_call(b: Core, k, m: Mark, scope: str, current: str, naming: Naming, out: str, call: tuple[str, Span],
                own_scope: bool) -> None:
    """File what the call that began at `m` added as the template of `k`, if it can be replayed. `call` is
    (block name, where the call is written), the entry it made in every node's `calls`; `own_scope` when
    the call made its scope itself (at the call's line and column), not a construct of the block."""
    b.replays[k] = 2  # recorded or refused: either way, not recorded again
    g = b.g
    if (len(b.diags) != m.diags or len(b.dead) != m.dead or len(b.warned) != m.warned
            or dict(naming.counters) != m.counters or len(b.calls) != m.calls):
        return
    inner = scope + "."

    def rel(x: str):
        if x == scope:
            return ("",)
        if x.startswith(inner):
            return (x[len(scope):],)
        return None

    nodes, edges = [], []
    pred = g.pred
    for n in _last(g._node, len(g) - m.nodes):
        r = rel(n)
        if r is None:
            return
        d = g.nodes[n]
        sc = rel(d["scope"]) or (OUTER if d["scope"] == naming.scope else None)
        calls = d["calls"]
        if sc is None or len(calls) <= m.calls or calls[m.calls] != call or d["span"] == call[1]:
            return
        nodes.append((r[0], d["op"], d["attrs"], d["span"], d["line"], d["col"], sc, calls[m.calls + 1:], d["role"]))
        ins = []
        for u, e in pred[n].items():
            ru = rel(u)
            if ru is None and u != current:
                return
            ins.append((ru[0] if ru else None, e["slot"]))
        edges.append(tuple(ins))
    scopes = []
    table = g.graph["scopes"]
    for s in _last(table, len(table) - m.scopes):
        r = rel(s)
        if r is None:
            return
        entry = dict(table[s])
        parent = entry["parent"]
        entry["parent"] = rel(parent) or (OUTER if parent == naming.scope else None)
        if entry["parent"] is None:
            return
        if own_scope and s == scope:  # where the call is written: filled in by each replay
            if (entry["file"], entry["line"], entry["col"]) != (call[1].file, call[1].line, call[1].col):
                return
            entry["file"] = entry["line"] = entry["col"] = None
        scopes.append((r[0], entry))
    annotations = []
    for n, dims, span, calls in g.graph["annotations"][m.annotations:]:
        r = rel(n)
        if r is None or len(calls) <= m.calls or calls[m.calls] != call or span == call[1]:
            return
        annotations.append((r[0], dims, span, calls[m.calls + 1:]))
    o = rel(out) if out != current else (None,)
    h = rel(b.here) if b.here != current else (None,)
    if o is None or h is None:
        return
    shape = shapes = None
    if b.shape_reads != m.shape_reads:  # the expansion depends on the input's shape, and so do its shapes
        shape = b.shape_of(current)
        if shape is None:
            return
        shapes = tuple(b.shape_of(scope + n[0]) for n in nodes)
    b.templates[k] = Template(tuple(nodes), tuple(edges), tuple(scopes), tuple(annotations), o, h, shape,
                              shapes, b.work - m.work, b.fn_count - m.fn_count, b.items - m.items)


def play(b: Core, k, scope: str, current: str, naming: Naming, call: tuple[str, Span]) -> str | None:
    """Add the template of `k` under `scope`, continuing from `current`, for `call` (block name, where it is
    written); its value, or None when there is no template or it cannot be replayed here (the call then
    runs as written)."""
    from .expr import MAX_CALLS, MAX_ITEMS

    t = b.templates.get(k) if k is not None else None
    if t is None or not fresh(b, scope):
        return None
    g = b.g
    if (len(g) + len(t.nodes) > b.max_nodes or b.work + t.work > b.max_work or len(b.diags) > MAX_ERRORS
            or b.fn_count + t.fn_count > MAX_CALLS or b.items + t.items > 10 * MAX_ITEMS):
        return None
    if t.shape is not None and b.shape_of(current) != t.shape:
        return None
    ids = [scope + n[0] for n in t.nodes]
    if any(n in g for n in ids):
        return None
    calls = (*b.calls, call)

    def name(r) -> str:
        return current if r is None else scope + r

    def absolute(r) -> str:
        return naming.scope if r is OUTER else scope + r[0]

    add = g.add_node_from
    for nid, (_, op, attrs, span, line, col, sc, inner_calls, role), ins in zip(ids, t.nodes, t.edges, strict=True):
        add(nid, {"op": op, "attrs": dict(attrs), "span": span, "line": line, "col": col, "scope": absolute(sc),
                  "calls": calls + inner_calls, "role": role},
            [(current if src is None else scope + src, slot) for src, slot in ins])
    if t.shapes is not None:
        b.shapes.update(zip(ids, t.shapes, strict=True))
    table = g.graph["scopes"]
    for r, entry in t.scopes:
        e = dict(entry)
        e["parent"] = absolute(e["parent"])
        if e["line"] is None:
            e["file"], e["line"], e["col"] = call[1].file, call[1].line, call[1].col
        table[scope + r] = e
    g.graph["annotations"].extend((scope + r, dims, span, calls + inner) for r, dims, span, inner in t.annotations)
    b.work += t.work
    b.fn_count += t.fn_count
    b.items += t.items
    b.here = name(t.here[0])
    return name(t.out[0])
