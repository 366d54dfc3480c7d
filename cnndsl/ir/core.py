"""The graph builder's state: the graph being made, reporting, adding and naming nodes, opening scopes.

Every other piece of the builder (cnndsl.ir.expand, .imports, .defaults, .args, .expr) works through a
`Core`. Nothing here knows a layer kind's parameters or looks at shapes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import field
from pathlib import Path
from typing import Any

from .. import ast
from ..diagnostics import Diagnostic, Note, Span, error
from ..graph import new_graph
from ..records import record

MAX_NODES = 250_000  # a spec that expands past this is almost certainly a runaway repeat
MAX_ERRORS = 10_000  # errors reported before the build stops
KEYWORDS = {"network", "input", "defaults", "import", "output", "block", "residual", "shortcut", "repeat",
            "fn", "let", "for", "in", "if", "elif", "else", "and", "or", "not"}
DEAD = "\0dead"  # the value of a statement that failed: later layers build, but get no shapes


class StmtError(Exception):
    """Abandons the current statement; the diagnostic is already recorded."""


class Fatal(Exception):
    """Abandons the whole build (e.g. runaway expansion); the diagnostic is already recorded."""


@record(frozen=False)
class Env:
    """The value namespace of the top level or of one block instance."""

    values: dict[str, str] = field(default_factory=dict)  # named tensors -> node id
    holders: dict[str, list[str]] = field(default_factory=dict)  # node id -> names once given it (name_value)
    value_spans: dict[str, Span] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)  # block parameters
    defaults: dict[str, dict[str, tuple[Any, Span]]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    file: str = ""  # the file whose code runs in it (its top-level defaults are in `defaults`)


def name_value(env: Env, name: str, nid: str) -> None:
    """Name a value: `values`, and `holders`, which lets a chain find the names of the value it continues
    from without reading every name (a spec may name thousands of values)."""
    env.values[name] = nid
    env.holders.setdefault(nid, []).append(name)


@record(frozen=False)
class Naming:
    """Where new nodes get their names: a prefix and per-kind counters (conv1, conv2, ...)."""

    prefix: str = ""
    scope: str = ""
    counters: Counter = field(default_factory=Counter)


@record(frozen=False)
class BlockDef:
    node: ast.Block
    defaults: dict[str, dict[str, tuple[Any, Span]]]  # the defining file's top-level defaults
    consts: dict[str, Any] = field(default_factory=dict)  # the defining file's top-level `let`s
    file: str = ""


@record(frozen=False)
class FnDef:
    node: ast.Fn
    consts: dict[str, Any]  # the defining file's top-level `let`s


def suggest(word: str, options, what: str = "") -> str | None:
    import difflib  # only when a name is wrong: `check` of a good spec never loads it

    close = difflib.get_close_matches(word, sorted(options), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?" + (f" {what}" if what else "")


class Core:
    """The state of one build: the graph being made, the diagnostics, the known blocks and the call
    stack; how diagnostics are reported, how nodes are added and named, and how scopes open."""

    def __init__(self, sources: dict[str, str], max_nodes: int = MAX_NODES, allow_import=()):
        self.g = new_graph()
        self.sources = sources
        self.diags: list[Diagnostic] = []
        self.blocks: dict[str, BlockDef] = {}
        self.fns: dict[str, FnDef] = {}
        self.consts_of: dict[str, dict[str, Any]] = {}  # an imported file's top-level `let` constants, by file
        self.fn_calls: list[tuple[str, Span]] = []
        self.fn_count = 0  # `fn` calls evaluated, and numbers made by `range`: both are bounded
        self.items = 0
        self.top_file = ""  # the spec being built, and its top-level defaults (for `default-not-imported`)
        self.top_defaults: dict[str, dict[str, tuple[Any, Span]]] = {}
        self.warned: set[Span] = set()
        self.calls: list[tuple[str, Span]] = []
        self.dead: set[str] = self.g.graph["dead"]
        self.max_nodes = max_nodes
        self.here = DEAD  # the value the statement being expanded continues from (`channels()` reads it)
        self.shapes: dict[str, Any] = {}  # shapes asked for during expansion (memo; None: cannot be known)
        # block calls replayed (cnndsl.ir.replay): how often each key was seen (None: never replay), templates
        self.replays: dict | None = {}
        self.templates: dict = {}
        # the attrs of layers written with literal arguments (cnndsl.ir.args.resolve; None: resolve every one)
        self.resolved: dict | None = {}
        self.shape_reads = 0  # calls of shape_of: whether a block's expansion depends on its input's shape
        # NOTE: expansion is bounded by the work done (statements run, repeat iterations, block calls), not
        # only by the layers kept: `repeat 1000000000 { }` or a failing body doubled 30 times keep none
        self.work, self.max_work = 0, 16 * max_nodes + 10_000
        self.root: Path | None = None  # the main spec's folder: imports stay inside it (cnndsl.ir.imports)
        self.allow_import = [Path(d).resolve() for d in allow_import]  # and the folders --allow-import names

    def shape_of(self, nid: str):
        """The output shape of node `nid`, inferred on demand from the registry (memoised), or None when it
        cannot be known (an input failed, or a shape error that the shape pass will report)."""
        self.shape_reads += 1
        if nid in self.shapes:
            return self.shapes[nid]
        from ..graph import inputs_of
        from ..layers import LAYERS, ShapeError

        todo = [nid]
        while todo:
            n = todo[-1]
            if n in self.shapes:
                todo.pop()
                continue
            if n == DEAD or n in self.dead or n not in self.g:
                self.shapes[n] = None
                todo.pop()
                continue
            srcs = inputs_of(self.g, n)
            missing = [u for u in srcs if u not in self.shapes]
            if missing:
                todo.extend(missing)
                continue
            todo.pop()
            d = self.g.nodes[n]
            ins = [self.shapes[u] for u in srcs]
            out = None
            if all(i is not None for i in ins):
                try:
                    out = LAYERS[d["op"]].infer(ins, d["attrs"])
                except ShapeError:
                    out = None
                if out is not None and any(x < 1 for x in out):
                    out = None
            self.shapes[n] = out
        return self.shapes[nid]

    def tick(self, span: Span, cost: int = 1) -> None:
        """Count expansion work; stop the build (Fatal) past the budget or past MAX_ERRORS errors."""
        self.work += cost
        if self.work > self.max_work or len(self.diags) > MAX_ERRORS:
            if len(self.diags) > MAX_ERRORS:
                self.report(error("too-many-errors", f"more than {MAX_ERRORS:,} errors; stopped here", span))
            else:
                self.report(error("too-large", f"the spec takes more than {self.max_work:,} expansion steps", span,
                                  help="check the `repeat` counts and the blocks that call each other; raise the "
                                       "limit with `--max-layers` if this is intended"))
            raise Fatal

    def _context_notes(self) -> tuple[Note, ...]:
        return tuple(Note(f"in function `{name}`, called here", span) for name, span in reversed(self.fn_calls)) + \
            tuple(Note(f"in block `{name}`, called here", span) for name, span in reversed(self.calls))

    def report(self, d: Diagnostic) -> None:
        if d.severity == "error" and (self.calls or self.fn_calls):
            d = d.with_notes(*self._context_notes())
        self.diags.append(d)

    def fail(self, code: str, message: str, span: Span | None, **kw) -> None:
        self.report(error(code, message, span, **kw))
        raise StmtError

    def add_node(self, op: str, attrs: dict, inputs: list[str], span: Span, naming: Naming, as_name: str | None = None,
                 scope: str | None = None, role: str = "") -> str:
        if len(self.g) >= self.max_nodes:
            self.report(error(
                "too-large", f"the network expands to more than {self.max_nodes:,} layers", span,
                help="check the `repeat` counts; raise the limit with `--max-layers` if this is intended",
            ))
            raise Fatal
        # NOTE: one edge per (source, layer) in a DiGraph, so a value cannot fill two input slots
        dup, seen = None, set()
        for u in inputs if len(inputs) > 1 else ():  # a set, not `u in inputs[:i]`: a merge may have 10,000
            if u in seen and u != DEAD:
                dup = u
                break
            seen.add(u)
        if dup is not None:
            self.fail("duplicate-input", f"`{op}` would take `{dup}` twice", span,
                      help=f"a merge takes each value once; to use it twice, copy it first: "
                           f"`{dup}_2 = {dup} -> identity`")
        if as_name is None:
            naming.counters[op] += 1
            as_name = f"{naming.prefix}{op}{naming.counters[op]}"
        nid, k, g = as_name, 1, self.g
        while nid in g._node:
            k += 1
            nid = f"{as_name}_{k}"
        edges = []
        for slot, src in enumerate(inputs):
            if src == DEAD or src in self.dead:
                self.dead.add(nid)
            else:
                edges.append((src, slot))
        g.add_node_from(nid, {"op": op, "attrs": attrs, "span": span, "line": span.line, "col": span.col,
                              "scope": naming.scope if scope is None else scope, "calls": tuple(self.calls),
                              "role": role}, edges)
        return nid

    def child(self, naming: Naming, scope_id: str, kind: str, label: str, span: Span) -> Naming:
        self.g.graph["scopes"][scope_id] = {
            "kind": kind, "label": label, "parent": naming.scope, "file": span.file, "line": span.line,
            "col": span.col,
        }
        return Naming(prefix=f"{scope_id}.", scope=scope_id)

    def auto_name(self, naming: Naming, base: str) -> str:
        naming.counters[base] += 1
        return f"{naming.prefix}{base}{naming.counters[base]}"
