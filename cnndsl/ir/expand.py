"""Expansion: statements, chains, blocks, repeats, residuals and branches become layers in the graph.

The program runs in source order; each statement continues from the value of the one before. Names of
layers and scopes come from cnndsl.ir.core; arguments are resolved by cnndsl.ir.args against the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import ast
from ..diagnostics import Note, Span, error, warning
from ..graph import LayerGraph, ancestors
from ..layers import FOREIGN_KINDS, INTERNAL, LAYERS, foreign, resolve_params
from ..util import fmt_shape
from ..util import show as _show
from . import replay
from .args import _src, resolve
from .core import DEAD, KEYWORDS, MAX_NODES, BlockDef, Core, Env, Fatal, Naming, StmtError, name_value, suggest
from .defaults import collect_defaults
from .expr import evaluate, truth
from .imports import LIB_DIR, bind_let, load_definitions


def _single(stmts: tuple) -> bool:
    """A body of exactly one layer or construct (ignoring `defaults`): it takes its scope's name."""
    stmts = [s for s in stmts if not isinstance(s, ast.Defaults)]
    return len(stmts) == 1 and isinstance(stmts[0], ast.ChainStmt) and len(stmts[0].chain.elements) == 1


class Builder(Core):
    """Runs a program's statements in order, expanding blocks, repeats, residuals and branches into layers."""

    def build(self, prog: ast.Program, input_override: tuple[int, ...] | None) -> LayerGraph:
        """The whole program: definitions and imports first, then the input, the body and the outputs."""
        top = Env(file=prog.file)
        top.defaults = collect_defaults(self, prog.stmts, top)
        self.top_file, self.top_defaults = prog.file, top.defaults
        self.root = Path(prog.file).parent if prog.file[:1] != "<" else None
        consts: dict[str, Any] = {}
        load_definitions(self, prog, top.defaults, [prog.file], consts)
        top.vars = dict(consts)  # a copy: a top-level loop's names are not seen by the file's blocks

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
            got = fmt_shape(shape)
            self.report(error("bad-input-shape", f"the input must be HxWxC (or a vector N), got `{got}`", span,
                              help="write it like `input 32x32x3`"))
            return self.g
        src = self.add_node("input", {"shape": tuple(shape)}, [], span, Naming(), as_name="input")
        self.g.graph["input"] = src
        name_value(top, "input", src)
        top.used.add("input")

        current = src
        try:
            current = self.run_body(prog.stmts, current, top, Naming(), toplevel=True)
        except Fatal:
            return self.g

        outputs = [s for s in prog.stmts if isinstance(s, ast.Output)]
        if outputs:
            outs = []
            for o in outputs:
                for n in o.names:
                    if n.id not in top.values:
                        self.report(error("unknown-value", f"`{n.id}` is not a named value", n.span,
                                          help=suggest(n.id, top.values)))
                    else:
                        outs.append(self.value_ref(n.id, top))
        else:
            outs = [current]
        self.finish_env(top)  # after `output`, which uses the values it lists
        if outs == [src]:
            self.report(error("empty-network", "the network has no layers", span,
                              help="add layers after the input, e.g. `conv f=3 n=16 -> relu`"))
        self.g.graph["outputs"] = [o for o in outs if o != DEAD]
        self.prune(top)
        return self.g

    def prune(self, top: Env) -> None:
        """Drop layers that reach no output (their values were reported unused)."""
        outs = [o for o in self.g.graph["outputs"] if o in self.g]
        if not outs or self.dead:
            return
        live = set(outs)
        for o in outs:
            live |= ancestors(self.g, o)
        drop = [n for n in self.g if n not in live]
        self.g.remove_nodes_from(drop)

    def finish_env(self, env: Env) -> None:
        for name, span in env.value_spans.items():
            if name not in env.used:
                self.report(warning(
                    "unused-value", f"the value `{name}` is never used, so its layers are left out", span,
                    help=f"use it (e.g. `concat({name}, ...)`) or list it in `output`"))

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
            except StmtError:
                current = DEAD
        return current

    def run_stmt(self, s, current: str, env: Env, naming: Naming, toplevel: bool) -> str:
        if isinstance(s, (ast.Network, ast.Input, ast.Import, ast.Output, ast.Block, ast.Fn)):
            if not toplevel:
                word = type(s).__name__.lower()
                self.fail("misplaced-statement", f"`{word}` is only allowed at the top level of a file", s.span)
            return current
        if isinstance(s, ast.Defaults):
            return current  # collected before the body runs
        if isinstance(s, ast.Let):
            if not toplevel:  # a top-level `let` is a constant of the file, evaluated before the body runs
                self.here = current
                bind_let(self, s, env)
            return current
        if isinstance(s, ast.Assign):
            if s.name in LAYERS or s.name in self.blocks or s.name in KEYWORDS:
                what = "a layer kind" if s.name in LAYERS else "a block" if s.name in self.blocks else "a keyword"
                self.fail("reserved-name", f"`{s.name}` is {what} and cannot name a value", s.name_span,
                          help="pick another name")
            if s.name in env.vars:
                self.fail("reserved-name", f"`{s.name}` is a block parameter or a constant and cannot name a value",
                          s.name_span)
            if s.name in env.values and s.name not in env.used and s.name in env.value_spans:
                self.report(warning("unused-value", f"the value `{s.name}` is replaced before it is used",
                                    env.value_spans[s.name]))
                env.used.add(s.name)
            try:
                out = self.run_chain(s.chain, current, env, naming, as_name=f"{naming.prefix}{s.name}")
            except StmtError:
                out = DEAD
            name_value(env, s.name, out)
            env.value_spans[s.name] = s.name_span
            if out == DEAD:
                env.used.add(s.name)
                raise StmtError
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
            env.used.update(k for k in env.holders.get(current, ()) if env.values.get(k) == current)
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
        self.here = current  # what `channels()` reads while this element's arguments are evaluated
        if isinstance(el, ast.Layer):
            return self.run_layer(el, current, env, naming, at_start, as_name)
        if isinstance(el, ast.Branches):
            return self.run_branches(el, current, env, naming, as_name)
        if isinstance(el, ast.Residual):
            return self.run_residual(el, current, env, naming, as_name)
        if isinstance(el, ast.Repeat):
            return self.run_repeat(el, current, env, naming, as_name)
        if isinstance(el, ast.Annotated):
            out = self.run_element(el.element, current, env, naming, at_start, as_name)
            self.g.graph["annotations"].append((out, el.dims, el.shape_span, tuple(self.calls)))
            return out
        if isinstance(el, ast.For):
            return self.run_for(el, current, env, naming, as_name)
        if isinstance(el, ast.If):
            chosen = self.choose(el, current, env)
            if not chosen:
                return current
            return self.run_body(chosen, current, env, naming, as_name=as_name)
        if isinstance(el, ast.Shortcut):
            self.fail("misplaced-shortcut", "`shortcut` belongs directly inside a `residual { ... }`", el.span,
                      help="write it as its own line inside the residual's braces")
        raise TypeError(f"unknown element {el!r}")  # pragma: no cover

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
            help_ = f"cnndsl calls it `{ours}`" if ours else suggest(name, options)
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
                              help=suggest(getattr(a, "id", ""), env.values) or
                              "name a value first, e.g. `a = conv f=1 n=64`, then `concat(a, b)`")
                inputs.append(ref)
            attrs = resolve(self, kind, el, env, positional=())
        else:
            attrs = resolve(self, kind, el, env, positional=el.args)
            inputs = [current]
        lo, hi = kind.arity
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            self.fail("bad-arity", f"`{name}` needs at least {lo} inputs, got {len(inputs)}", el.span,
                      help=f"merge several values, e.g. `{name}(a, b)`, or use branches: `{name} {{ ... | ... }}`")
        return self.add_node(name, attrs, inputs, el.span, naming, as_name)

    def run_branches(self, el: ast.Branches, current: str, env: Env, naming: Naming, as_name) -> str:
        kind = LAYERS.get(el.name)
        if el.name in ("else", "elif"):
            self.fail("misplaced-else", f"`{el.name}` must follow the `}}` of an `if` on the same line", el.name_span,
                      help=f"write `}} {el.name} ...` on one line")
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

    def choose(self, el: ast.If, current: str, env: Env) -> tuple:
        """The statements of the first arm of an `if` whose condition holds (the `else`, or none)."""
        for cond, stmts in el.arms:
            self.here = current
            if truth(self, evaluate(self, cond, env), cond):
                return stmts
        return el.orelse or ()

    def run_residual(self, el: ast.Residual, current: str, env: Env, naming: Naming, as_name) -> str:
        body, shortcut, chose = [], None, False
        for s in el.body:
            if isinstance(s, ast.ChainStmt) and any(isinstance(e, ast.Shortcut) for e in s.chain.elements):
                if len(s.chain.elements) > 1:
                    self.fail("misplaced-shortcut", "`shortcut { ... }` must stand on its own line in the residual",
                              s.span, help="move the other layers out of this line")
                if shortcut is not None or chose:
                    self.fail("duplicate-statement", "a residual has at most one `shortcut`", s.span)
                shortcut = s.chain.elements[0]
            elif isinstance(s, ast.ChainStmt) and _chooses_shortcut(s):
                # `if cond { shortcut { ... } }`: decided on the residual's input, before the body runs
                if shortcut is not None or chose:
                    self.fail("duplicate-statement", "a residual has at most one `shortcut`", s.span)
                chose = True
                shortcut = self.chosen_shortcut(s.chain.elements[0], current, env)
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
        attrs = resolve_params(LAYERS["add"], {})
        return self.add_node("add", attrs, [out, skip], el.span, inner, as_name=scope, scope=scope, role="residual")

    def chosen_shortcut(self, el: ast.If, current: str, env: Env) -> ast.Shortcut | None:
        """The shortcut an `if` inside a residual chooses (None: the identity); every arm is checked."""
        for stmts in [arm for _, arm in el.arms] + [el.orelse or ()]:
            stmts = [s for s in stmts if not isinstance(s, ast.Defaults)]
            only = stmts[0].chain.elements if len(stmts) == 1 and isinstance(stmts[0], ast.ChainStmt) else ()
            if stmts and (len(only) != 1 or not isinstance(only[0], ast.Shortcut)):
                self.fail("misplaced-shortcut", "an `if` that chooses a residual's shortcut holds only the "
                          "`shortcut { ... }` line in each arm", stmts[0].span,
                          help="move the other layers into the residual's body, outside the `if`")
        stmts = [s for s in self.choose(el, current, env) if not isinstance(s, ast.Defaults)]
        return stmts[0].chain.elements[0] if stmts else None

    def run_for(self, el: ast.For, current: str, env: Env, naming: Naming, as_name) -> str:
        """`for NAME in list { ... }` / `for (a, b) in table { ... }`: the body once per item, in order."""
        for n in el.names:
            if n.id in LAYERS or n.id in KEYWORDS or n.id in self.blocks:
                what = "a layer kind" if n.id in LAYERS else "a block" if n.id in self.blocks else "a keyword"
                self.fail("reserved-name", f"`{n.id}` is {what} and cannot name a loop value", n.span,
                          help="pick another name")
            if n.id in env.values:
                self.fail("reserved-name", f"`{n.id}` is a named value and cannot also name a loop value", n.span,
                          help="pick another name")
        seen: set[str] = set()
        for n in el.names:
            if n.id in seen:
                self.fail("duplicate-param", f"`{n.id}` is named twice in the loop", n.span)
            seen.add(n.id)
        items = evaluate(self, el.items, env)
        if not isinstance(items, list):
            self.fail("bad-loop", f"`for` goes over a list, got `{_show(items)}`", el.items.span,
                      help="e.g. `for (k, c) in [(3, 16), (5, 24)] { ... }` or `for i in range(n) { ... }`")
        spans = getattr(items, "spans", ())  # where each row was written, when the list was written out
        if len(spans) != len(items):
            spans = [el.items.span] * len(items)
        rows = []
        for i, item in enumerate(items):
            if not el.unpack:
                rows.append([item])
                continue
            if not isinstance(item, list) or len(item) != len(el.names):
                got = f"{len(item)} values" if isinstance(item, list) else f"`{_show(item)}`"
                names = ", ".join(n.id for n in el.names)
                self.fail("bad-loop", f"item {i + 1} of the list is {got}, but the loop takes ({names})", spans[i],
                          notes=[Note("the loop", el.names[0].span)] if spans[i] != el.items.span else [],
                          help=f"each item is a tuple of {len(el.names)} values, e.g. "
                               f"({', '.join(str(k + 1) for k in range(len(el.names)))})")
            rows.append(item)
        if as_name is not None:
            naming = self.child(naming, as_name, "repeat", f"for {len(rows)} items", el.span)
        saved = {n.id: env.vars[n.id] for n in el.names if n.id in env.vars}
        try:
            for row in rows:
                self.tick(el.span)
                for n, v in zip(el.names, row, strict=True):
                    env.vars[n.id] = v
                current = self.run_body(el.body, current, env, naming)
        finally:
            for n in el.names:
                env.vars.pop(n.id, None)
            env.vars.update(saved)
        return current

    def run_repeat(self, el: ast.Repeat, current: str, env: Env, naming: Naming, as_name) -> str:
        n = evaluate(self, el.count, env)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            self.fail("bad-param", f"`repeat` needs a whole number of times, got `{n}`", el.count.span)
        if n > self.max_nodes and el.body:
            self.report(error("too-large", f"`repeat {n:,}` expands to more than {self.max_nodes:,} layers",
                              el.count.span, help="raise the limit with `--max-layers` if this is intended"))
            raise Fatal
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
                bound[pname] = evaluate(self, e, env)

        for p, e in zip(block.params, el.args, strict=False):
            bind(p.name, e)
        for kw in el.kwargs:
            if kw.name not in params:
                self.fail("unknown-argument", f"block `{block.name}` has no parameter `{kw.name}`", kw.span,
                          help=suggest(kw.name, params) or f"its parameters are ({_block_sig(block)})")
            if kw.name in bound or kw.name in tensors:
                self.fail("duplicate-param", f"`{kw.name}` is given twice", kw.span)
            bind(kw.name, kw.value)
        inner_env = Env(vars={**b.consts, **bound}, used=set(tensors), file=b.file)
        for name, nid in tensors.items():
            name_value(inner_env, name, nid)
        for p in block.params:
            if p.name in bound or p.name in tensors:
                continue
            if p.default is None:
                self.fail("missing-argument", f"block `{block.name}` needs a value for `{p.name}`", el.span,
                          help=f"its parameters are ({_block_sig(block)})")
            inner_env.vars[p.name] = bound[p.name] = evaluate(self, p.default, inner_env)
        self.tick(el.span, 16)  # a call costs many statements (an environment, defaults, a scope: ~40x measured)
        scope = as_name or self.auto_name(naming, block.name)
        memo = replay.key(self, b, bound, tensors, current)
        out = replay.play(self, memo, scope, current, naming, (block.name, el.span))
        if out is not None:
            return out
        mark = replay.start(self, memo, scope, naming)
        args = ", ".join(f"{k}={_show(v)}" for k, v in bound.items())
        self.calls.append((block.name, el.span))
        try:
            inner_env.defaults = b.defaults
            inner_env.defaults = collect_defaults(self, block.body, inner_env)
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
        if mark is not None:
            replay.record_call(self, memo, mark, scope, current, naming, out, (block.name, el.span),
                               own_scope=not _single(block.body))
        return out


def _chooses_shortcut(s: ast.ChainStmt) -> bool:
    """`if ... { shortcut { ... } } else { ... }` on its own line: a conditional projection."""
    if len(s.chain.elements) != 1 or not isinstance(s.chain.elements[0], ast.If):
        return False
    el = s.chain.elements[0]
    arms = [stmts for _, stmts in el.arms] + ([el.orelse] if el.orelse else [])
    return any(isinstance(x, ast.ChainStmt) and any(isinstance(e, ast.Shortcut) for e in x.chain.elements)
               for stmts in arms for x in stmts)


def _block_sig(b: ast.Block) -> str:
    return ", ".join(p.name + ("=..." if p.default is not None else "") for p in b.params)


def build(prog: ast.Program, sources: dict[str, str], input_override=None, max_nodes: int = MAX_NODES,
          allow_import=(), caches: bool = True):
    """AST -> (graph, diagnostics). The graph is incomplete when an error diagnostic is present.

    `caches=False` expands every block call and resolves every layer as written, without the replayed
    calls of cnndsl.ir.replay and the resolved arguments of cnndsl.ir.args (tests/test_replay.py compares)."""
    b = Builder(sources, max_nodes, allow_import)
    if not caches:
        b.replays = b.resolved = None
    return b.build(prog, input_override), b.diags
