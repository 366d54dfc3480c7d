"""A checked spec moved to new line numbers, for editors: when an edit only adds, removes or changes blank
and comment-only lines (a new line, a comment typed, a line deleted), the spec means what it meant, at new
lines. The editor then moves the last check's results instead of checking again.

Why the check would be the same: the grammar (grammar/cnndsl.lark) takes blank lines and comments, any
number of them, into the token that joins two lines (`_NL`, `->`, `|`, `,`, brackets), and a comment-only
line cannot be inside a string; so the new text has the old one's tokens, in order, on lines moved by a
map that is the identity above the edit and a shift below it, in the same columns. Every stage is a
function of the tokens and reports positions only through Spans (messages never quote a line number),
so the graph, the diagnostics and the receptive fields are the old ones with every position in the
edited file moved by that map; positions in other files (imported blocks) stay. A `# allow: CODE` comment
changes which warnings are kept: it sits on a line with code, so an edit of it is not a move.

`line_map(old, new)` finds the map (None when any changed line has code), `moved(model, ...)` makes the
moved Model; anything with a position inside the edited lines (which only a check of the new text could
place) makes it give up (`Unmoved`), and the editor checks the text as usual. tests/test_incremental.py
compares moved checks with fresh ones after every kind of such edit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .analyses.receptive import Fields
from .diagnostics import Diagnostic, Note, Span
from .incremental import _code
from .model import NO_TOTALS, Model, _cost


class Unmoved(Exception):
    """A position inside the edited lines: only a check of the new text can place it."""


def line_map(old: str, new: str) -> tuple[int, int, int] | None:
    """(a, z, d) when `new` is `old` with its 1-based lines a+1..z replaced by blank or comment-only lines
    (d more of them), every replaced line being blank or comment-only too: lines up to a stay, lines
    after z move d down; None when a line with code changed, or the first line did (a missing `input`,
    an empty body and other things without a position of their own are reported at 1:1)."""
    if old == new:
        return (0, 0, 0)
    ol, nl = old.split("\n"), new.split("\n")
    n = min(len(ol), len(nl))
    a = 0
    while a < n and ol[a] == nl[a]:
        a += 1
    b = 0
    while b < n - a and ol[-1 - b] == nl[-1 - b]:
        b += 1
    if a < 1 or any(_code(x) for x in ol[a:len(ol) - b]) or any(_code(x) for x in nl[a:len(nl) - b]):
        return None  # the first line stays: the stages put what has no place of its own at 1:1
    return (a, len(ol) - b, len(nl) - len(ol))


def _liner(path: str, a: int, z: int, d: int) -> Callable[[str | None, int], int]:
    """(file, line) -> its new line: the same above the edit, d further below it; Unmoved inside it."""
    def line(file: str | None, n: int) -> int:
        if file != path or n <= a:
            return n
        if n > z:
            return n + d
        raise Unmoved

    return line


def _mover(path: str, a: int, z: int, d: int) -> Callable[[Span | None], Span | None]:
    """Span -> the Span with both ends moved by `_liner` (the same object where nothing moves)."""
    if a == z and d == 0:  # the same text (saved again): nothing moves
        return lambda s: s
    line = _liner(path, a, z, d)

    def move(s: Span | None) -> Span | None:
        if s is None or s.file != path or s.end_line <= a:
            return s
        return Span(s.file, line(path, s.line), s.col, line(path, s.end_line), s.end_col)

    return move


def _diagnostic(dg: Diagnostic, move) -> Diagnostic:
    notes = tuple(Note(n.message, move(n.span)) for n in dg.notes)
    return Diagnostic(dg.severity, dg.code, dg.message, move(dg.span), notes, dg.help)


def moved(m: Model, path: str, text: str, lines: tuple[int, int, int]) -> Model:
    """The model `m` of the spec at `path` moved to `text` by `lines` (from `line_map`), its costs made
    when asked for, as `compile_text(costs=False)` leaves them; raises Unmoved."""
    a, z, d = lines
    move, line = _mover(path, a, z, d), _liner(path, a, z, d)
    old = m.layer_graph

    pairs: dict[int, tuple] = {}  # a call's (block, span) is one object in every node it made: moved once

    def call(pair: tuple) -> tuple:
        got = pairs.get(id(pair))
        if got is None:
            got = pairs[id(pair)] = (pair, (pair[0], move(pair[1])))
        return got[1]

    nodes = {}
    for n, attrs in old._node.items():
        attrs = dict(attrs)
        span = attrs["span"]
        new = move(span)
        if new is not span:
            attrs.update(span=new, line=new.line)
        if attrs["calls"]:
            attrs["calls"] = tuple([call(c) for c in attrs["calls"]])
        for k in ("params", "trainable", "non_trainable", "macs"):  # the costs are made again, when asked for
            attrs.pop(k, None)
        nodes[n] = attrs
    g = old.with_nodes(nodes)
    g.graph["scopes"] = {s: e if e["file"] != path else {**e, "line": line(e["file"], e["line"])}
                         for s, e in old.graph["scopes"].items()}
    g.graph["annotations"] = [(n, dims, move(s), tuple((name, move(c)) for name, c in calls))
                              for n, dims, s, calls in old.graph["annotations"]]
    rf = m.rf
    if rf is not None:
        rf = Fields(rf.fields, rf.declined, rf.covers, [_diagnostic(x, move) for x in rf.diagnostics])
    sources = dict(m.sources)
    sources[path] = text
    out = Model(
        name=m.name, input_shape=m.input_shape, layer_graph=g, layers=[], totals=NO_TOTALS,
        outputs=list(m.outputs), path=m.path, sources=sources, warnings=[_diagnostic(x, move) for x in m.warnings],
        program=None, rf=rf,  # the AST: editing.Analysis parses the text when it is asked for
    )
    out.pending = functools.partial(_cost, shapes={n: attrs["shape"] for n, attrs in nodes.items()})
    return out


def moved_diagnostics(diags: list[Diagnostic], path: str, lines: tuple[int, int, int]) -> list[Diagnostic]:
    """The diagnostics of a spec that did not compile, moved as `moved` moves a model's; raises Unmoved."""
    move = _mover(path, *lines)
    return [_diagnostic(x, move) for x in diags]
