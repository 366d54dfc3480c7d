"""Graph build: AST -> networkx.DiGraph of layers, with blocks expanded and names assigned.

Node ids are hierarchical and readable (`stage2.bottleneck1.conv2`). Each node carries:
  op      the layer kind (a key of cnndsl.layers.LAYERS)
  attrs   its resolved parameters (defaults applied)
  span    where it was written (cnndsl.diagnostics.Span); `line`, `col` for convenience
  scope   the id of the innermost block/branch/residual it belongs to ("" at top level)
  calls   the block calls it was expanded from, outermost first: ((block, Span), ...)
Edges carry `slot`, the input position (concat order, add's body-then-shortcut).
Graph-level: g.graph["name"], ["input"] (node id), ["outputs"], ["scopes"] (id -> kind, label, parent).
Nodes are inserted in a topological order that follows the source, so `list(g)` is the layer order.
The passes (cnndsl.passes) add shapes and costs; nothing here looks at shapes.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from . import ast
from .diagnostics import CompileError, Diagnostic, Note, Span, error, warning
from .layers import FOREIGN_KINDS, FOREIGN_PARAMS, INTERNAL, LAYERS, ParamError, Sym, foreign, resolve_params

MAX_NODES = 250_000  # a spec that expands past this is almost certainly a runaway repeat
MAX_ERRORS = 10_000  # errors reported before the build stops
KEYWORDS = {"network", "input", "defaults", "import", "output", "block", "residual", "shortcut", "repeat"}
LIB_DIR = Path(__file__).resolve().parent / "blocks"


class _StmtError(Exception):
    """Abandons the current statement; the diagnostic is already recorded."""


class _Fatal(Exception):
    """Abandons the whole build (e.g. runaway expansion); the diagnostic is already recorded."""


_DEAD = "\0dead"  # the value of a statement that failed: later layers build, but get no shapes


@dataclass
class Env:
    """The value namespace of the top level or of one block instance."""

    values: dict[str, str] = field(default_factory=dict)  # named tensors -> node id
    value_spans: dict[str, Span] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)  # block parameters
    defaults: dict[str, dict[str, tuple[Any, Span]]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)


@dataclass
class Naming:
    """Where new nodes get their names: a prefix and per-kind counters (conv1, conv2, ...)."""

    prefix: str = ""
    scope: str = ""
    counters: Counter = field(default_factory=Counter)


@dataclass
class BlockDef:
    node: ast.Block
    defaults: dict[str, dict[str, tuple[Any, Span]]]  # the defining file's top-level defaults


def _suggest(word: str, options, what: str = "") -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?" + (f" {what}" if what else "")


def _single(stmts: tuple) -> bool:
    """A body of exactly one layer or construct (ignoring `defaults`): it takes its scope's name."""
    stmts = [s for s in stmts if not isinstance(s, ast.Defaults)]
    return len(stmts) == 1 and isinstance(stmts[0], ast.ChainStmt) and len(stmts[0].chain.elements) == 1


class Builder:
    def __init__(self, sources: dict[str, str], max_nodes: int = MAX_NODES, allow_import=()):
        self.g = nx.DiGraph()
        self.g.graph.update(name=None, input=None, outputs=[], scopes={})
        self.sources = sources
        self.diags: list[Diagnostic] = []
        self.blocks: dict[str, BlockDef] = {}
        self.calls: list[tuple[str, Span]] = []
        self.dead: set[str] = set()
        self.max_nodes = max_nodes
        self.order = 0
        # NOTE: expansion is bounded by the work done (statements run, repeat iterations, block calls), not
        # only by the layers kept: `repeat 1000000000 { }` or a failing body doubled 30 times keep none
        self.work, self.max_work = 0, 4 * max_nodes + 1_000_000
        self.allow_import = [Path(d).resolve() for d in allow_import]  # folders imports may come from

    def tick(self, span: Span, cost: int = 1) -> None:
        self.work += cost
        if self.work > self.max_work or len(self.diags) > MAX_ERRORS:
            if len(self.diags) > MAX_ERRORS:
                self.report(error("too-many-errors", f"more than {MAX_ERRORS:,} errors; stopped here", span))
            else:
                self.report(error("too-large", f"the spec takes more than {self.max_work:,} expansion steps", span,
                                  help="check the `repeat` counts and the blocks that call each other; raise the "
                                       "limit with `--max-layers` if this is intended"))
            raise _Fatal

    # --- reporting -----------------------------------------------------------------------------

    def _context_notes(self) -> tuple[Note, ...]:
        return tuple(Note(f"in block `{name}`, called here", span) for name, span in reversed(self.calls))

    def report(self, d: Diagnostic) -> None:
        if d.severity == "error" and self.calls:
            d = d.with_notes(*self._context_notes())
        self.diags.append(d)

    def fail(self, code: str, message: str, span: Span | None, **kw) -> None:
        self.report(error(code, message, span, **kw))
        raise _StmtError

    # --- nodes ---------------------------------------------------------------------------------

    def add_node(self, op: str, attrs: dict, inputs: list[str], span: Span, naming: Naming, as_name: str | None = None,
                 scope: str | None = None) -> str:
        if len(self.g) >= self.max_nodes:
            self.report(error(
                "too-large", f"the network expands to more than {self.max_nodes:,} layers", span,
                help="check the `repeat` counts; raise the limit with `--max-layers` if this is intended",
            ))
            raise _Fatal
        # NOTE: one edge per (source, layer) in a DiGraph, so a value cannot fill two input slots
        dup, seen = None, set()
        for u in inputs if len(inputs) > 1 else ():  # a set, not `u in inputs[:i]`: a merge may have 10,000
            if u in seen and u != _DEAD:
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
        nid, k = as_name, 1
        while nid in self.g:
            k += 1
            nid = f"{as_name}_{k}"
        self.g.add_node(
            nid, op=op, attrs=attrs, span=span, line=span.line, col=span.col,
            scope=naming.scope if scope is None else scope, calls=tuple(self.calls), order=self.order,
        )
        self.order += 1
        for slot, src in enumerate(inputs):
            if src == _DEAD or src in self.dead:
                self.dead.add(nid)
            else:
                self.g.add_edge(src, nid, slot=slot)
        return nid

    def child(self, naming: Naming, scope_id: str, kind: str, label: str, span: Span) -> Naming:
        self.g.graph["scopes"][scope_id] = {
            "kind": kind, "label": label, "parent": naming.scope, "line": span.line, "col": span.col,
        }
        return Naming(prefix=f"{scope_id}.", scope=scope_id)

    def auto_name(self, naming: Naming, base: str) -> str:
        naming.counters[base] += 1
        return f"{naming.prefix}{base}{naming.counters[base]}"

    # --- expressions ---------------------------------------------------------------------------

    def eval(self, e: ast.Expr, env: Env) -> Any:
        if isinstance(e, ast.Num):
            return e.value
        if isinstance(e, ast.Size):
            return e.dims
        if isinstance(e, ast.Str):
            return e.value
        if isinstance(e, ast.Name):
            if e.id in env.vars:
                return env.vars[e.id]
            return Sym(e.id)
        if isinstance(e, ast.ListLit):
            return [self.eval(i, env) for i in e.items]
        if isinstance(e, ast.Neg):
            v = self.eval(e.operand, env)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.fail("bad-expression", f"cannot negate `{v}`", e.span)
            return -v
        if isinstance(e, ast.BinOp):
            a, b = self.eval(e.left, env), self.eval(e.right, env)
            for v, sub in ((a, e.left), (b, e.right)):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    hint = None
                    if isinstance(v, Sym):
                        hint = f"`{v}` is not a block parameter here" + (
                            f"; {_suggest(v, env.vars)}" if _suggest(v, env.vars) else "")
                    self.fail("bad-expression", f"arithmetic needs numbers, got `{v}`", sub.span, help=hint)
            if e.op == "+":
                return a + b
            if e.op == "-":
                return a - b
            if e.op == "*":
                return a * b
            if b == 0:
                self.fail("bad-expression", "division by zero", e.span)
            if isinstance(a, int) and isinstance(b, int) and a % b == 0:
                return a // b
            return a / b
        raise TypeError(f"unknown expression {e!r}")  # pragma: no cover

    # --- program -------------------------------------------------------------------------------

    def build(self, prog: ast.Program, input_override: tuple[int, ...] | None) -> nx.DiGraph:
        self.root = Path(prog.file).parent if prog.file[:1] != "<" else None
        top = Env()
        top.defaults = self.collect_defaults(prog.stmts, top, toplevel=True)
        self.load_definitions(prog, top.defaults, [prog.file])

        network = [s for s in prog.stmts if isinstance(s, ast.Network)]
        for extra in network[1:]:
            self.report(error("duplicate-statement", "`network` is given twice", extra.span,
                              notes=[Note("first given here", network[0].span)]))
        if network:
            self.g.graph["name"] = network[0].name
        else:
            self.g.graph["name"] = Path(prog.file).stem if prog.file[:1] != "<" else "network"

        inputs = [s for s in prog.stmts if isinstance(s, ast.Input)]
        for extra in inputs[1:]:
            self.report(error("duplicate-statement", "`input` is given twice", extra.span,
                              notes=[Note("first given here", inputs[0].span)],
                              help="a network has one input; use named values to branch from it"))
        if input_override is not None:
            shape, span = input_override, (inputs[0].span if inputs else Span(prog.file, 1, 1, 1, 1))
        elif inputs:
            shape, span = inputs[0].dims, inputs[0].span
        else:
            help_ = "add a line such as `input 32x32x3` (H x W x C) before the first layer"
            if not any(isinstance(s, (ast.Assign, ast.ChainStmt)) for s in prog.stmts) and self.blocks:
                path = Path(prog.file)
                how = path.stem if path.resolve().parent == LIB_DIR else f'"{path.name}"'
                help_ = f"this file only defines blocks: use them from a spec with `import {how}` and an `input`"
            self.report(error("missing-input", "the spec does not declare its input", Span(prog.file, 1, 1, 1, 1),
                              help=help_))
            return self.g
        if len(shape) not in (1, 3) or any(d < 1 for d in shape):
            got = "x".join(map(str, shape))
            self.report(error("bad-input-shape", f"the input must be HxWxC (or a vector N), got `{got}`", span,
                              help="write it like `input 32x32x3`"))
            return self.g
        src = self.add_node("input", {"shape": tuple(shape)}, [], span, Naming(), as_name="input")
        self.g.graph["input"] = src
        top.values["input"] = src
        top.used.add("input")

        current = src
        try:
            current = self.run_body(prog.stmts, current, top, Naming(), toplevel=True)
        except _Fatal:
            return self.g

        outputs = [s for s in prog.stmts if isinstance(s, ast.Output)]
        if outputs:
            outs = []
            for o in outputs:
                for n in o.names:
                    if n.id not in top.values:
                        self.report(error("unknown-value", f"`{n.id}` is not a named value", n.span,
                                          help=_suggest(n.id, top.values)))
                    else:
                        outs.append(self.value_ref(n.id, top))
        else:
            outs = [current]
        self.finish_env(top)  # after `output`, which uses the values it lists
        if outs == [src]:
            self.report(error("empty-network", "the network has no layers", span,
                              help="add layers after the input, e.g. `conv f=3 n=16 -> relu`"))
        self.g.graph["outputs"] = [o for o in outs if o != _DEAD]
        self.prune(top)
        return self.g

    def prune(self, top: Env) -> None:
        """Drop layers that reach no output (their values were reported unused)."""
        outs = [o for o in self.g.graph["outputs"] if o in self.g]
        if not outs or self.dead:
            return
        live = set(outs)
        for o in outs:
            live |= nx.ancestors(self.g, o)
        drop = [n for n in self.g if n not in live]
        self.g.remove_nodes_from(drop)

    def finish_env(self, env: Env) -> None:
        for name, span in env.value_spans.items():
            if name not in env.used:
                self.report(warning(
                    "unused-value", f"the value `{name}` is never used, so its layers are left out", span,
                    help=f"use it (e.g. `concat({name}, ...)`) or list it in `output`"))

    def collect_defaults(self, stmts, env: Env, toplevel: bool) -> dict[str, dict[str, tuple[Any, Span]]]:
        out: dict[str, dict[str, tuple[Any, Span]]] = {k: dict(v) for k, v in env.defaults.items()}
        own: dict[tuple[str, str], Span] = {}
        for s in stmts:
            if not isinstance(s, ast.Defaults):
                continue
            kind = LAYERS.get(s.kind)
            if kind is None or s.kind in INTERNAL:
                self.report(error("unknown-layer", f"unknown layer kind `{s.kind}`", s.kind_span,
                                  help=_suggest(s.kind, set(LAYERS) - INTERNAL)))
                continue
            for kw in s.kwargs:
                if kw.name not in kind.params:
                    self.report(error("unknown-param", f"`{s.kind}` has no parameter `{kw.name}`", kw.span,
                                      help=_suggest(kw.name, kind.params) or f"`{s.kind}` takes {_param_list(kind)}"))
                    continue
                if (s.kind, kw.name) in own:
                    self.report(error("duplicate-default", f"a default for `{s.kind} {kw.name}` is already set",
                                      kw.span, notes=[Note("first set here", own[(s.kind, kw.name)])]))
                    continue
                own[(s.kind, kw.name)] = kw.span
                try:
                    out.setdefault(s.kind, {})[kw.name] = (self.eval(kw.value, env), kw.span)
                except _StmtError:
                    pass
        return out

    def load_definitions(self, prog: ast.Program, defaults, chain: list[str]) -> None:
        """Collect the blocks of `prog` and, recursively, of the files it imports."""
        for s in prog.stmts:
            if isinstance(s, ast.Import):
                self.load_import(s, prog.file, chain)
        for s in prog.stmts:
            if isinstance(s, ast.Block):
                self.define_block(s, defaults)

    def define_block(self, b: ast.Block, defaults) -> None:
        if b.name in LAYERS or b.name in KEYWORDS:
            what = "layer kind" if b.name in LAYERS else "keyword"
            self.report(error("reserved-name", f"`{b.name}` is a built-in {what}", b.name_span,
                              help="give the block another name"))
            return
        if b.name in self.blocks:
            first = self.blocks[b.name].node
            if first is b:
                return
            self.report(error("duplicate-block", f"block `{b.name}` is defined twice", b.name_span,
                              notes=[Note("first defined here", first.name_span)]))
            return
        seen = set()
        for p in b.params:
            if p.name in seen:
                self.report(error("duplicate-param", f"block parameter `{p.name}` is listed twice", p.span))
            seen.add(p.name)
        self.blocks[b.name] = BlockDef(b, defaults)

    def load_import(self, s: ast.Import, importer: str, chain: list[str]) -> None:
        from . import safeio, syntax

        if s.is_path:
            base = Path(importer).parent if importer[:1] != "<" else Path.cwd()
            path = (base / s.target)
            if not self.confined(path, s):
                return
        else:
            path = LIB_DIR / f"{s.target}.cnn"
        key = str(path.resolve()) if path.exists() else str(path)
        if key in chain:
            cycle = " -> ".join(Path(c).name for c in chain[chain.index(key):] + [key])
            self.report(error("import-cycle", f"`{s.target}` imports itself: {cycle}", s.span,
                              help="move the shared blocks into a file that both can import"))
            return
        if key in self.sources:
            return  # already loaded (a diamond of imports)
        if not path.is_file():
            lib = sorted(p.stem for p in LIB_DIR.glob("*.cnn"))
            if s.is_path:
                help_ = f"the path is relative to the importing file's folder, {base}"
            else:
                help_ = _suggest(s.target, lib) or (f"the bundled libraries are {', '.join(lib)}" if lib else None)
            self.report(error("import-not-found", f"cannot find `{s.target}`", s.span, help=help_))
            return
        try:
            text = safeio.read_bytes(path, safeio.MAX_SPEC_BYTES, "spec").decode("utf-8-sig")
        except safeio.FileProblem as e:
            self.report(error("import-not-found", str(e).replace(f"`{path}`", f"`{s.target}`"), s.span))
            return
        except UnicodeDecodeError as e:  # never quoted back: it may not be a spec at all
            self.report(error("bad-encoding", f"`{s.target}` is not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
                                              f"offset {e.start})", s.span, help="an imported file is a .cnn spec"))
            return
        name = str(path) if s.is_path else f"<cnndsl>/blocks/{s.target}.cnn"
        self.sources[key] = text
        self.sources[name] = text
        try:
            prog = syntax.parse(text, name)
        except CompileError as e:
            for d in e.diagnostics:
                self.report(d.with_notes(Note("imported here", s.span)))
            return
        for st in prog.stmts:
            if not isinstance(st, (ast.Import, ast.Block, ast.Defaults)):
                self.report(error("bad-import", "an imported file may hold only `block`, `defaults` and `import`",
                                  st.span, notes=[Note("imported here", s.span)]))
        defaults = self.collect_defaults(prog.stmts, Env(), toplevel=True)
        self.load_definitions(ast.Program(prog.stmts, key), defaults, chain + [key])

    def confined(self, path: Path, s: ast.Import) -> bool:
        """An imported path must be a .cnn file inside the main spec's folder tree, the bundled libraries or
        a folder allowed with --allow-import; otherwise report why and return False (nothing is read)."""
        if path.suffix != ".cnn":
            self.report(error("import-not-a-spec", f"`{s.target}` is not a .cnn file", s.span,
                              help="only specs can be imported: `import \"blocks.cnn\"`"))
            return False
        try:
            real = path.resolve()
        except (OSError, RuntimeError):
            real = path
        root = self.root.resolve() if self.root else Path.cwd().resolve()
        if any(real.is_relative_to(d) for d in (root, LIB_DIR, *self.allow_import)):
            return True
        self.report(error("import-outside", f"`{s.target}` is outside the folder of the spec, `{root}`", s.span,
                          help="imports stay inside the spec's folder and its subfolders (symbolic links are followed "
                               "first); allow another folder with `--allow-import DIR`"))
        return False

    # --- bodies and chains ---------------------------------------------------------------------

    def run_body(self, stmts, current: str, env: Env, naming: Naming, toplevel: bool = False,
                 as_name: str | None = None) -> str:
        """Run statements in order; each continues from the value of the one before."""
        if as_name is not None and _single(stmts):
            only = next(s for s in stmts if isinstance(s, ast.ChainStmt))
            return self.run_chain(only.chain, current, env, naming, as_name=as_name)
        if as_name is not None:
            naming = self.child(naming, as_name, "named", as_name.rsplit(".", 1)[-1], stmts[0].span if stmts else
                                Span("", 1, 1, 1, 1))
        for s in stmts:
            self.tick(s.span)
            try:
                current = self.run_stmt(s, current, env, naming, toplevel)
            except _StmtError:
                current = _DEAD
        return current

    def run_stmt(self, s, current: str, env: Env, naming: Naming, toplevel: bool) -> str:
        if isinstance(s, (ast.Network, ast.Input, ast.Import, ast.Output, ast.Block)):
            if not toplevel:
                word = type(s).__name__.lower()
                self.fail("misplaced-statement", f"`{word}` is only allowed at the top level of a file", s.span)
            return current
        if isinstance(s, ast.Defaults):
            return current  # collected before the body runs
        if isinstance(s, ast.Assign):
            if s.name in LAYERS or s.name in self.blocks or s.name in KEYWORDS:
                what = "a layer kind" if s.name in LAYERS else "a block" if s.name in self.blocks else "a keyword"
                self.fail("reserved-name", f"`{s.name}` is {what} and cannot name a value", s.name_span,
                          help="pick another name")
            if s.name in env.vars:
                self.fail("reserved-name", f"`{s.name}` is a block parameter and cannot name a value", s.name_span)
            if s.name in env.values and s.name not in env.used and s.name in env.value_spans:
                self.report(warning("unused-value", f"the value `{s.name}` is replaced before it is used",
                                    env.value_spans[s.name]))
                env.used.add(s.name)
            try:
                out = self.run_chain(s.chain, current, env, naming, as_name=f"{naming.prefix}{s.name}")
            except _StmtError:
                out = _DEAD
            env.values[s.name] = out
            env.value_spans[s.name] = s.name_span
            if out == _DEAD:
                env.used.add(s.name)
                raise _StmtError
            return out
        if isinstance(s, ast.ChainStmt):
            return self.run_chain(s.chain, current, env, naming)
        raise TypeError(f"unknown statement {s!r}")  # pragma: no cover

    def run_chain(self, chain: ast.Chain, current: str, env: Env, naming: Naming, as_name: str | None = None) -> str:
        elements = chain.elements
        first = elements[0]
        starts_from_values = isinstance(first, ast.Layer) and (
            first.name in env.values or (first.name in LAYERS and LAYERS[first.name].is_merge and bool(first.args)))
        if not starts_from_values:
            # the chain continues from the current value, so a name bound to that value is used
            env.used.update(k for k, v in env.values.items() if v == current)
        if isinstance(first, ast.Layer) and first.name in env.values and len(elements) > 1:
            # `a -> conv ...`: the value reference makes no layer, so it does not count for naming
            current = self.run_layer(first, current, env, naming, True, None)
            chain = ast.Chain(elements[1:], chain.span)
        if as_name is not None and len(chain.elements) > 1:
            naming = self.child(naming, as_name, "named", as_name.rsplit(".", 1)[-1], chain.span)
            as_name = None
        for i, el in enumerate(chain.elements):
            current = self.run_element(el, current, env, naming, at_start=(i == 0 and chain.elements is elements),
                                       as_name=as_name)
        return current

    def run_element(self, el, current: str, env: Env, naming: Naming, at_start: bool, as_name: str | None) -> str:
        if isinstance(el, ast.Layer):
            return self.run_layer(el, current, env, naming, at_start, as_name)
        if isinstance(el, ast.Branches):
            return self.run_branches(el, current, env, naming, as_name)
        if isinstance(el, ast.Residual):
            return self.run_residual(el, current, env, naming, as_name)
        if isinstance(el, ast.Repeat):
            return self.run_repeat(el, current, env, naming, as_name)
        if isinstance(el, ast.Shortcut):
            self.fail("misplaced-shortcut", "`shortcut` belongs directly inside a `residual { ... }`", el.span,
                      help="write it as its own line inside the residual's braces")
        raise TypeError(f"unknown element {el!r}")  # pragma: no cover

    # --- elements ------------------------------------------------------------------------------

    def value_ref(self, name: str, env: Env) -> str | None:
        if name in env.values:
            env.used.add(name)
            return env.values[name]
        return None

    def run_layer(self, el: ast.Layer, current: str, env: Env, naming: Naming, at_start: bool, as_name) -> str:
        name = el.name
        if name in env.values:
            env.used.add(name)
            if el.args or el.kwargs or el.call:
                self.fail("not-a-layer", f"`{name}` is a named value, not a layer", el.name_span,
                          help=f"a value takes no arguments; to merge it, write `concat({name})` or `add({name})`")
            if not at_start:
                self.fail("value-mid-chain", f"`{name}` is a named value and cannot follow `->`", el.name_span,
                          help=f"to merge it with the chain, write `-> concat({name})` or `-> add({name})`; "
                               f"to continue from it, start a new line with `{name} -> ...`")
            return self.value_ref(name, env)
        if name in self.blocks:
            return self.call_block(el, self.blocks[name], current, env, naming, as_name)
        kind = LAYERS.get(name)
        if kind is None or name in INTERNAL:
            options = (set(LAYERS) - INTERNAL) | set(self.blocks) | set(env.values)
            ours = foreign(FOREIGN_KINDS, name)
            help_ = f"cnndsl calls it `{ours}`" if ours else _suggest(name, options)
            if help_ is None and name in env.vars:
                help_ = f"`{name}` is a block parameter, not a layer"
            self.fail("unknown-layer", f"unknown layer kind `{name}`", el.name_span,
                      help=help_ or "see `cnndsl layers` for the layer kinds")
        if kind.is_merge:
            inputs = [] if at_start and el.args else [current]
            for a in el.args:
                ref = self.value_ref(a.id, env) if isinstance(a, ast.Name) else None
                if ref is None:
                    self.fail("unknown-value", f"`{name}` takes named values, and `{_src(a)}` is not one", a.span,
                              help=_suggest(getattr(a, "id", ""), env.values) or
                              "name a value first, e.g. `a = conv f=1 n=64`, then `concat(a, b)`")
                inputs.append(ref)
            attrs = self.resolve(kind, el, env, positional=())
        else:
            attrs = self.resolve(kind, el, env, positional=el.args)
            inputs = [current]
        lo, hi = kind.arity
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            self.fail("bad-arity", f"`{name}` needs at least {lo} inputs, got {len(inputs)}", el.span,
                      help=f"merge several values, e.g. `{name}(a, b)`, or use branches: `{name} {{ ... | ... }}`")
        return self.add_node(name, attrs, inputs, el.span, naming, as_name)

    def resolve(self, kind, el: ast.Layer, env: Env, positional) -> dict:
        given: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        for e in positional:
            if isinstance(e, ast.Name) and (e.id in LAYERS or e.id in self.blocks) and e.id not in env.vars:
                self.fail("missing-arrow", f"`{e.id}` is a layer, not an argument of `{kind.name}`", e.span,
                          help=f"is `->` missing before `{e.id}`?")
        if len(positional) > len(kind.positional):
            extra = positional[len(kind.positional)]
            help_ = None
            if isinstance(extra, ast.Name) and (extra.id in LAYERS or extra.id in self.blocks):
                help_ = f"is `->` missing before `{extra.id}`?"
            elif kind.positional:
                help_ = f"`{kind.name}` takes {len(kind.positional)} positional argument ({kind.positional[0]}); " \
                        "name the others, e.g. `f=3`"
            else:
                help_ = f"name the argument, e.g. `{next(iter(kind.params), 'f')}=...`"
            self.fail("unexpected-argument", f"unexpected argument `{_src(extra)}` for `{kind.name}`", extra.span,
                      help=help_)
        for pname, e in zip(kind.positional, positional, strict=False):
            given[pname] = self.eval(e, env)
            spans[pname] = e.span
            if "f" in kind.params and pname != "f" and (isinstance(e, ast.Size) or (
                    pname == "mode" and isinstance(given[pname], int))):
                # `conv 3x3 n=64`, `pool 2`: a window size given where another parameter goes first
                self.fail("bad-param", f"`{_src(e)}` is not `{kind.name}`'s `{pname}`", e.span,
                          help=f"write the {'filter' if kind.group == 'conv' else 'window'} size as "
                               f"`f={_src(e)}`")
        for kw in el.kwargs:
            if kw.name not in kind.params:
                ours = foreign(FOREIGN_PARAMS, kw.name)
                if ours in kind.params:
                    help_ = f"`{kind.name}` writes it `{ours}`: `{ours}={_src(kw.value)}`"
                else:
                    help_ = _suggest(kw.name, kind.params) or f"`{kind.name}` takes {_param_list(kind)}"
                self.fail("unknown-param", f"`{kind.name}` has no parameter `{kw.name}`", kw.span, help=help_)
            if kw.name in given:
                self.fail("duplicate-param", f"`{kw.name}` is given twice", kw.span)
            given[kw.name] = self.eval(kw.value, env)
            spans[kw.name] = kw.value.span
        for pname, (value, span) in env.defaults.get(kind.name, {}).items():
            if pname not in given:
                given[pname] = value
                spans[pname] = span
        try:
            return resolve_params(kind, given)
        except ParamError as e:
            pname = getattr(e, "param", None)
            if getattr(e, "missing", False):
                self.fail("missing-param", str(e), el.span, help=e.help)
            self.fail("bad-param", f"`{kind.name} {pname}`: {e}", spans.get(pname, el.span), help=e.help)
        raise AssertionError  # pragma: no cover

    def run_branches(self, el: ast.Branches, current: str, env: Env, naming: Naming, as_name) -> str:
        kind = LAYERS.get(el.name)
        if kind is None or not kind.is_merge:
            merges = sorted(k for k, v in LAYERS.items() if v.is_merge)
            self.fail("not-a-merge", f"`{el.name}` does not take branches", el.name_span,
                      help=f"branches are merged by {', '.join(f'`{m}`' for m in merges)}")
        if len(el.branches) < kind.arity[0]:
            self.fail("bad-arity", f"`{el.name}` needs at least {kind.arity[0]} branches, got {len(el.branches)}",
                      el.span, help=f"separate branches with `|`: `{el.name} {{ identity | conv f=3 n=64 p=same }}`")
        scope = as_name or self.auto_name(naming, el.name)
        inner = self.child(naming, scope, "branches", f"{el.name} of {len(el.branches)} branches", el.span)
        outs = []
        for i, stmts in enumerate(el.branches, 1):
            outs.append(self.run_body(stmts, current, env, inner, as_name=f"{scope}.branch{i}"))
        attrs = resolve_params(kind, {})
        return self.add_node(el.name, attrs, outs, el.span, inner, as_name=scope, scope=scope)

    def run_residual(self, el: ast.Residual, current: str, env: Env, naming: Naming, as_name) -> str:
        body, shortcut = [], None
        for s in el.body:
            if isinstance(s, ast.ChainStmt) and any(isinstance(e, ast.Shortcut) for e in s.chain.elements):
                if len(s.chain.elements) > 1:
                    self.fail("misplaced-shortcut", "`shortcut { ... }` must stand on its own line in the residual",
                              s.span, help="move the other layers out of this line")
                if shortcut is not None:
                    self.fail("duplicate-statement", "a residual has at most one `shortcut`", s.span)
                shortcut = s.chain.elements[0]
            else:
                body.append(s)
        if not body:
            self.fail("empty-residual", "the residual body has no layers", el.span,
                      help="write the body's layers inside the braces: `residual { conv f=3 n=64 p=same }`")
        scope = as_name or self.auto_name(naming, "residual")
        inner = self.child(naming, scope, "residual", "residual" + (" (projection)" if shortcut else ""), el.span)
        out = self.run_body(tuple(body), current, env, inner)
        skip = current
        if shortcut is not None:
            if not shortcut.body:
                self.fail("empty-residual", "the shortcut has no layers", shortcut.span,
                          help="delete it for an identity shortcut")
            skip = self.run_body(shortcut.body, current, env, inner, as_name=f"{scope}.shortcut")
        attrs = {**resolve_params(LAYERS["add"], {}), "residual": True}
        return self.add_node("add", attrs, [out, skip], el.span, inner, as_name=scope, scope=scope)

    def run_repeat(self, el: ast.Repeat, current: str, env: Env, naming: Naming, as_name) -> str:
        n = self.eval(el.count, env)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            self.fail("bad-param", f"`repeat` needs a whole number of times, got `{n}`", el.count.span)
        if n > self.max_nodes and el.body:
            self.report(error("too-large", f"`repeat {n:,}` expands to more than {self.max_nodes:,} layers",
                              el.count.span, help="raise the limit with `--max-layers` if this is intended"))
            raise _Fatal
        if as_name is not None:
            naming = self.child(naming, as_name, "repeat", f"repeat {n}", el.span)
        for _ in range(n):
            self.tick(el.span)
            current = self.run_body(el.body, current, env, naming)
        return current

    def call_block(self, el: ast.Layer, b: BlockDef, current: str, env: Env, naming: Naming, as_name) -> str:
        block = b.node
        if any(name == block.name for name, _ in self.calls):
            path = " -> ".join([n for n, _ in self.calls] + [block.name])
            self.fail("recursive-block", f"block `{block.name}` calls itself ({path})", el.name_span,
                      help="a block cannot expand into itself; use `repeat` for repetition")
        params = {p.name: p for p in block.params}
        bound: dict[str, Any] = {}
        tensors: dict[str, str] = {}
        if len(el.args) > len(block.params):
            self.fail("unexpected-argument",
                      f"block `{block.name}` takes {len(block.params)} arguments, got {len(el.args)}",
                      el.args[len(block.params)].span, help=f"its parameters are ({_block_sig(block)})")

        def bind(pname: str, e: ast.Expr) -> None:
            if isinstance(e, ast.Name) and e.id in env.values:
                tensors[pname] = self.value_ref(e.id, env)
            else:
                bound[pname] = self.eval(e, env)

        for p, e in zip(block.params, el.args, strict=False):
            bind(p.name, e)
        for kw in el.kwargs:
            if kw.name not in params:
                self.fail("unknown-argument", f"block `{block.name}` has no parameter `{kw.name}`", kw.span,
                          help=_suggest(kw.name, params) or f"its parameters are ({_block_sig(block)})")
            if kw.name in bound or kw.name in tensors:
                self.fail("duplicate-param", f"`{kw.name}` is given twice", kw.span)
            bind(kw.name, kw.value)
        inner_env = Env(vars=dict(bound), values=dict(tensors), used=set(tensors))
        for p in block.params:
            if p.name in bound or p.name in tensors:
                continue
            if p.default is None:
                self.fail("missing-argument", f"block `{block.name}` needs a value for `{p.name}`", el.span,
                          help=f"its parameters are ({_block_sig(block)})")
            inner_env.vars[p.name] = bound[p.name] = self.eval(p.default, inner_env)
        self.tick(el.span, 4)  # a call costs about four statements (an environment, defaults, a scope)
        scope = as_name or self.auto_name(naming, block.name)
        args = ", ".join(f"{k}={_show(v)}" for k, v in bound.items())
        self.calls.append((block.name, el.span))
        try:
            inner_env.defaults = b.defaults
            inner_env.defaults = self.collect_defaults(block.body, inner_env, toplevel=False)
            label = f"{block.name}({args})"
            if _single(block.body):
                # the block is one layer or construct (e.g. a residual): it takes the block's name and label
                out = self.run_body(block.body, current, inner_env, naming, as_name=scope)
                self.g.graph["scopes"].get(scope, {})["label"] = label
                self.g.graph["scopes"].get(scope, {})["block"] = block.name
            else:
                inner = self.child(naming, scope, "block", label, el.span)
                self.g.graph["scopes"][scope]["block"] = block.name
                out = self.run_body(block.body, current, inner_env, inner)
            self.finish_env(inner_env)
        finally:
            self.calls.pop()
        return out


def _src(e) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Num):
        return str(e.value)
    if isinstance(e, ast.Size):
        return "x".join(map(str, e.dims))
    return "..."


def _show(v) -> str:
    return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _param_list(kind) -> str:
    return ", ".join(f"`{p}`" for p in kind.params) or "no parameters"


def _block_sig(b: ast.Block) -> str:
    return ", ".join(p.name + ("=..." if p.default is not None else "") for p in b.params)


def verify(g: nx.DiGraph) -> None:
    """Check the graph invariants every pass relies on; raise AssertionError naming the broken one."""
    inputs = [n for n, d in g.nodes(data=True) if d["op"] == "input"]
    assert len(inputs) == 1, f"expected exactly one input node, found {inputs}"
    assert nx.is_directed_acyclic_graph(g), f"the layer graph has a cycle: {nx.find_cycle(g)}"
    order = {n: i for i, n in enumerate(g)}
    for n, d in g.nodes(data=True):
        kind = LAYERS[d["op"]]
        preds = list(g.in_edges(n, data="slot"))
        lo, hi = kind.arity
        assert lo <= len(preds) and (hi is None or len(preds) <= hi), f"{n}: {len(preds)} inputs for `{d['op']}`"
        assert sorted(s for _, _, s in preds) == list(range(len(preds))), f"{n}: input slots are not 0..k-1"
        assert all(order[u] < order[n] for u, _, _ in preds), f"{n}: an input comes after it in node order"
    for o in g.graph["outputs"]:
        assert o in g, f"output {o} is not a node"


def inputs_of(g: nx.DiGraph, n: str) -> list[str]:
    """The node's inputs in slot order (concat order; add's body before its shortcut)."""
    return [u for u, _ in sorted(((u, s) for u, _, s in g.in_edges(n, data="slot")), key=lambda x: x[1])]


def build(prog: ast.Program, sources: dict[str, str], input_override=None, max_nodes: int = MAX_NODES,
          allow_import=()):
    """AST -> (graph, diagnostics). The graph is incomplete when an error diagnostic is present.

    Imports come from the main spec's folder tree, the bundled libraries and the `allow_import` folders."""
    b = Builder(sources, max_nodes, allow_import)
    g = b.build(prog, input_override)
    g.graph["dead"] = b.dead
    return g, b.diags
