"""Expressions in specs: numbers, sizes, words, lists, block parameters and arithmetic on them."""

from __future__ import annotations

from typing import Any

from .. import ast
from ..layers import Sym
from .core import Core, Env, suggest


def evaluate(b: Core, e: ast.Expr, env: Env) -> Any:
    """The value of `e` in `env`; a bare word that is no block parameter is a `Sym`."""
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
        return [evaluate(b, i, env) for i in e.items]
    if isinstance(e, ast.Neg):
        v = evaluate(b, e.operand, env)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            b.fail("bad-expression", f"cannot negate `{v}`", e.span)
        return -v
    if isinstance(e, ast.BinOp):
        x, y = evaluate(b, e.left, env), evaluate(b, e.right, env)
        for v, sub in ((x, e.left), (y, e.right)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                hint = None
                if isinstance(v, Sym):
                    hint = f"`{v}` is not a block parameter here" + (
                        f"; {suggest(v, env.vars)}" if suggest(v, env.vars) else "")
                b.fail("bad-expression", f"arithmetic needs numbers, got `{v}`", sub.span, help=hint)
        if e.op == "+":
            return x + y
        if e.op == "-":
            return x - y
        if e.op == "*":
            return x * y
        if y == 0:
            b.fail("bad-expression", "division by zero", e.span)
        if isinstance(x, int) and isinstance(y, int) and x % y == 0:
            return x // y
        return x / y
    raise TypeError(f"unknown expression {e!r}")  # pragma: no cover
