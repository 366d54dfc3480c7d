"""`defaults KIND param=value ...`: collected per file and per block body before the body runs."""

from __future__ import annotations

from typing import Any

from .. import ast
from ..diagnostics import Note, Span, error
from ..layers import INTERNAL, LAYERS
from .args import param_list
from .core import Core, Env, StmtError, suggest
from .expr import evaluate


def collect_defaults(b: Core, stmts, env: Env) -> dict[str, dict[str, tuple[Any, Span]]]:
    """The defaults in force in a body: the enclosing ones, overridden by the body's own statements."""
    out: dict[str, dict[str, tuple[Any, Span]]] = {k: dict(v) for k, v in env.defaults.items()}
    own: dict[tuple[str, str], Span] = {}
    for s in stmts:
        if not isinstance(s, ast.Defaults):
            continue
        kind = LAYERS.get(s.kind)
        if kind is None or s.kind in INTERNAL:
            b.report(error("unknown-layer", f"unknown layer kind `{s.kind}`", s.kind_span,
                           help=suggest(s.kind, set(LAYERS) - INTERNAL)))
            continue
        for kw in s.kwargs:
            if kw.name not in kind.params:
                b.report(error("unknown-param", f"`{s.kind}` has no parameter `{kw.name}`", kw.span,
                               help=suggest(kw.name, kind.params) or f"`{s.kind}` takes {param_list(kind)}"))
                continue
            if (s.kind, kw.name) in own:
                b.report(error("duplicate-default", f"a default for `{s.kind} {kw.name}` is already set",
                               kw.span, notes=[Note("first set here", own[(s.kind, kw.name)])]))
                continue
            own[(s.kind, kw.name)] = kw.span
            try:
                out.setdefault(s.kind, {})[kw.name] = (evaluate(b, kw.value, env), kw.span)
            except StmtError:
                pass
    return out
