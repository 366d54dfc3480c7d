"""Expressions in specs: numbers, sizes, words, lists, block parameters and `let` constants, arithmetic,
comparisons and conditions, and calls: the built-in functions, the spec's own `fn`s and activations
with their parameters (`leakyrelu(0.1)`).

Nothing in a spec is evaluated as Python: every operator and function is interpreted here, on numbers,
lists and words only. The shape functions (`channels()`, `height()`, `width()`) read the shape of the
value being expanded, inferred on demand by the builder (cnndsl.ir.core.Core.shape_of).
"""

from __future__ import annotations

import math
from typing import Any

from .. import ast
from ..layers import ACTIVATIONS, LAYERS, Act, ParamError, Sym, resolve_params
from ..util import show
from .core import DEAD, Core, Env, StmtError, suggest

FAILED = Sym("\0failed")  # the value of a `let` whose expression failed (reported once, where it is written)
MAX_ITEMS = 1_000_000  # `range` sizes: a runaway loop is refused before it is built
MAX_CALLS = 100_000  # `fn` calls in one build: functions that call others twice would take forever
MAX_BITS = 4096  # a whole number's size (about 1,230 digits): Python will not even print one past 4,300 digits


class Seq(list):
    """A list written in the spec, with where each item was written (for a loop's diagnostics)."""

    def __init__(self, items, spans=()):
        super().__init__(items)
        self.spans = spans


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _need_num(b: Core, v: Any, e: ast.Expr, env: Env, what: str = "arithmetic") -> None:
    if not _num(v):
        hint = None
        if isinstance(v, Sym):
            near = suggest(v, env.vars)
            hint = f"`{v}` is not a block parameter or a `let` here" + (f"; {near}" if near else "")
        b.fail("bad-expression", f"{what} needs numbers, got `{show(v)}`", e.span, help=hint)


def truth(b: Core, v: Any, e: ast.Expr) -> bool:
    """A condition's value: `true`/`false` or a comparison; anything else is an error, not a guess."""
    if isinstance(v, bool):
        return v
    if isinstance(v, Sym) and v in ("true", "false"):
        return v == "true"
    b.fail("bad-condition", f"a condition must be `true` or `false`, got `{show(v)}`", e.span,
           help="compare it, e.g. `s != 1` or `channels() == n`")
    raise AssertionError  # pragma: no cover


def _plain(v: Any) -> Any:
    """`true`/`false` words as booleans, so that `bn == true` and `bn == (s == 1)` agree."""
    if isinstance(v, Sym) and v in ("true", "false"):
        return v == "true"
    return v


def evaluate(b: Core, e: ast.Expr, env: Env) -> Any:
    """The value of `e` in `env`; a bare word that is no block parameter or constant is a `Sym`."""
    if isinstance(e, ast.Num):
        return e.value
    if isinstance(e, ast.Size):
        return e.dims
    if isinstance(e, ast.Str):
        return e.value
    if isinstance(e, ast.Name):
        if e.id in env.vars:
            v = env.vars[e.id]
            if v is FAILED:
                raise StmtError  # its `let` failed and was reported
            return v
        return Sym(e.id)
    if isinstance(e, ast.ListLit):
        return Seq([evaluate(b, i, env) for i in e.items], tuple(i.span for i in e.items))
    if isinstance(e, ast.Neg):
        v = evaluate(b, e.operand, env)
        if not _num(v):
            b.fail("bad-expression", f"cannot negate `{show(v)}`", e.span)
        return -v
    if isinstance(e, ast.Not):
        return not truth(b, evaluate(b, e.operand, env), e.operand)
    if isinstance(e, ast.IfExp):
        return evaluate(b, e.then if truth(b, evaluate(b, e.cond, env), e.cond) else e.orelse, env)
    if isinstance(e, ast.Call):
        return call(b, e, env)
    if isinstance(e, ast.BinOp):
        return _binop(b, e, env)
    raise TypeError(f"unknown expression {e!r}")  # pragma: no cover


_COMPARE = {
    "==": lambda x, y: x == y, "!=": lambda x, y: x != y, "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,
}


def _binop(b: Core, e: ast.BinOp, env: Env) -> Any:
    if e.op in ("and", "or"):
        x = truth(b, evaluate(b, e.left, env), e.left)
        if x == (e.op == "or"):
            return x
        return truth(b, evaluate(b, e.right, env), e.right)
    x, y = evaluate(b, e.left, env), evaluate(b, e.right, env)
    if e.op in ("==", "!="):
        return _COMPARE[e.op](_plain(x), _plain(y))
    what = "a comparison" if e.op in _COMPARE else "arithmetic"
    _need_num(b, x, e.left, env, what)
    _need_num(b, y, e.right, env, what)
    if e.op in _COMPARE:
        return _COMPARE[e.op](x, y)
    if e.op in ("/", "//", "%") and y == 0:
        b.fail("bad-expression", "division by zero", e.span)
    if e.op == "**" and x == 0 and y < 0:
        b.fail("bad-expression", "zero to a negative power", e.span)
    try:
        v = _ARITH[e.op](x, y)
    except (OverflowError, ValueError):
        v = math.inf
    if (isinstance(v, float) and not math.isfinite(v)) or (isinstance(v, int) and v.bit_length() > MAX_BITS):
        b.fail("bad-expression", "the result is too large for a number", e.span)
    return v


def _div(x, y):
    if isinstance(x, int) and isinstance(y, int) and x % y == 0:
        return x // y
    return x / y


_ARITH = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y, "/": _div,
    "//": lambda x, y: int(x // y), "%": lambda x, y: x % y, "**": lambda x, y: _pow(x, y),
}


def _pow(x, y):
    if isinstance(x, int) and isinstance(y, int) and y >= 0 and abs(x) > 1 and y * math.log2(abs(x)) > MAX_BITS:
        raise OverflowError  # 10 ** 10 ** 9 would take forever as a whole number
    v = x ** y
    if isinstance(v, complex):
        raise ValueError
    return v


# --- calls -------------------------------------------------------------------------------------


def _args(b: Core, e: ast.Call, env: Env) -> list:
    if e.kwargs:
        b.fail("bad-call", f"`{e.name}` takes no named arguments", e.kwargs[0].span,
               help=f"write `{e.name}(...)` with its arguments in order")
    return [evaluate(b, a, env) for a in e.args]


def _numbers(b: Core, e: ast.Call, env: Env, args: list) -> list:
    for v, a in zip(args, e.args, strict=True):
        _need_num(b, v, a, env, f"`{e.name}`")
    return args


def _minmax(b: Core, e: ast.Call, env: Env) -> Any:
    args = _args(b, e, env)
    if len(args) == 1 and isinstance(args[0], list):
        args, exprs = args[0], [e.args[0]] * len(args[0])
    else:
        exprs = list(e.args)
    if not args:
        b.fail("bad-call", f"`{e.name}` needs at least one number", e.span, help=f"e.g. `{e.name}(8, c // 2)`")
    for v, a in zip(args, exprs, strict=True):
        _need_num(b, v, a, env, f"`{e.name}`")
    return (min if e.name == "min" else max)(args)


def _unary_num(fn):
    def f(b: Core, e: ast.Call, env: Env) -> Any:
        args = _args(b, e, env)
        if len(args) != 1:
            b.fail("bad-call", f"`{e.name}` takes one number, got {len(args)} arguments", e.span,
                   help=f"e.g. `{e.name}(c * 0.25)`")
        (x,) = _numbers(b, e, env, args)
        try:
            v = fn(x) if not (isinstance(x, float) and not math.isfinite(x)) else math.nan
        except (OverflowError, ValueError):
            v = math.nan
        if isinstance(v, float) and not math.isfinite(v):
            b.fail("bad-expression", f"`{e.name}({show(x)})` is not a number cnndsl can use", e.span)
        return v

    return f


def _len(b: Core, e: ast.Call, env: Env) -> int:
    args = _args(b, e, env)
    if len(args) != 1 or not isinstance(args[0], (list, tuple)):
        b.fail("bad-call", "`len` takes one list", e.span, help="e.g. `len(table)`")
    return len(args[0])


def _sum(b: Core, e: ast.Call, env: Env) -> Any:
    args = _args(b, e, env)
    if len(args) != 1 or not isinstance(args[0], list):
        b.fail("bad-call", "`sum` takes one list of numbers", e.span, help="e.g. `sum(depths)`")
    for v in args[0]:
        _need_num(b, v, e.args[0], env, "`sum`")
    return sum(args[0])


def _zip(b: Core, e: ast.Call, env: Env) -> list:
    args = _args(b, e, env)
    if not args or not all(isinstance(a, list) for a in args):
        b.fail("bad-call", "`zip` takes lists", e.span, help="e.g. `for (w, d) in zip(widths, depths) { ... }`")
    if len({len(a) for a in args}) > 1:
        b.fail("bad-call", f"`zip` of lists of different lengths ({', '.join(str(len(a)) for a in args)})", e.span)
    return [list(row) for row in zip(*args, strict=True)]


def _range(b: Core, e: ast.Call, env: Env) -> list:
    args = _args(b, e, env)
    if not 1 <= len(args) <= 3:
        b.fail("bad-call", f"`range` takes 1 to 3 whole numbers, got {len(args)}", e.span,
               help="`range(n)` is 0, 1, ..., n - 1; `range(a, b)` is a, ..., b - 1")
    for v, a in zip(args, e.args, strict=True):
        if isinstance(v, bool) or not isinstance(v, int):
            b.fail("bad-expression", f"`range` needs whole numbers, got `{show(v)}`", a.span)
    r = range(*args) if args[-1] != 0 or len(args) < 3 else None
    if r is None:
        b.fail("bad-expression", "`range` with a step of 0", e.args[-1].span)
    b.items += len(r)
    if len(r) > MAX_ITEMS or b.items > 10 * MAX_ITEMS:
        b.fail("too-large", f"`range` of {len(r):,} numbers" if len(r) > MAX_ITEMS else
               f"the spec makes more than {10 * MAX_ITEMS:,} numbers with `range`", e.span, help="check the bounds")
    return list(r)


def _shape_fn(index: int | None):
    def f(b: Core, e: ast.Call, env: Env) -> Any:
        if e.kwargs or len(e.args) > 1:
            b.fail("bad-call", f"`{e.name}` takes at most one argument, a named value", e.span,
                   help=f"`{e.name}()` reads the value being built; `{e.name}(x)` the value named `x`")
        nid, what = b.here, "the current value"
        if nid is None and not e.args:
            b.fail("bad-call", f"`{e.name}()` reads the value being built, and a top-level `let` is a constant "
                   "set before any layer", e.span,
                   help=f"call `{e.name}()` inside a block or a chain, e.g. `let c = {e.name}()` in a block body")
        if e.args:
            a = e.args[0]
            if not isinstance(a, ast.Name) or a.id not in env.values:
                b.fail("unknown-value", f"`{e.name}` takes a named value, and `{_src(a)}` is not one", a.span,
                       help=suggest(getattr(a, "id", ""), env.values) or
                       f"write `{e.name}()` for the value being built")
            nid, what = env.values[a.id], f"`{a.id}`"
            env.used.add(a.id)
        if nid == DEAD:
            raise StmtError  # an earlier statement failed and was reported
        shape = b.shape_of(nid)
        if shape is None:
            raise StmtError  # a shape error upstream: the shape pass reports it where it happens
        if index is None:
            return list(shape)
        if len(shape) != 3:
            b.fail("bad-call", f"`{e.name}()` reads an H x W x C volume, but {what} is a vector of {shape[0]}",
                   e.span, help="`shape()` gives [n] for a vector")
        return shape[index]

    return f


BUILTINS = {
    "min": (_minmax, "the smallest of its numbers (or of a list)"),
    "max": (_minmax, "the largest of its numbers (or of a list)"),
    "round": (_unary_num(round), "the nearest whole number (halves to even, as Python's `round`)"),
    "floor": (_unary_num(math.floor), "the largest whole number not above x"),
    "ceil": (_unary_num(math.ceil), "the smallest whole number not below x"),
    "int": (_unary_num(int), "x without its fraction, towards zero (as Python's `int`)"),
    "abs": (_unary_num(abs), "the absolute value"),
    "sqrt": (_unary_num(lambda x: math.sqrt(x) if x >= 0 else math.nan), "the square root"),
    "log": (_unary_num(lambda x: math.log(x) if x > 0 else math.nan), "the natural logarithm"),
    "exp": (_unary_num(lambda x: math.exp(x) if x < 700 else math.inf), "e to the power x"),
    "len": (_len, "the number of items of a list"),
    "sum": (_sum, "the sum of a list of numbers"),
    "zip": (_zip, "rows from lists side by side: zip([1, 2], [3, 4]) is [(1, 3), (2, 4)]"),
    "range": (_range, "the list 0, 1, ..., n - 1 (`range(a, b)`, `range(a, b, step)`)"),
    "channels": (_shape_fn(2), "C of the value being built (or of a named value: `channels(x)`)"),
    "height": (_shape_fn(0), "H of the value being built"),
    "width": (_shape_fn(1), "W of the value being built"),
    "shape": (_shape_fn(None), "[H, W, C] of the value being built ([n] for a vector)"),
}


def call(b: Core, e: ast.Call, env: Env) -> Any:
    """`name(args)` in a value: a spec's `fn`, a built-in function, or an activation with parameters."""
    if e.name in b.fns:
        return _call_fn(b, e, env)
    if e.name in BUILTINS:
        return BUILTINS[e.name][0](b, e, env)
    if e.name in ACTIVATIONS:
        return activation(b, e.name, e.args, e.kwargs, env, e.span)
    if e.name in LAYERS or e.name in b.blocks:
        what = "layer kind" if e.name in LAYERS else "block"
        b.fail("not-a-function", f"`{e.name}` is a {what}, not a function", e.name_span,
               help="a value can call a `fn`, an activation (`act=leakyrelu(0.1)`) or a built-in function "
                    "(`min`, `max`, `round`, `channels`, ...); layers and blocks belong in a chain")
    near = suggest(e.name, set(b.fns) | set(BUILTINS))
    b.fail("unknown-function", f"unknown function `{e.name}`", e.name_span,
           help=near or "define it with `fn NAME(params) = expression`, or see docs/language.md for the "
                        "built-in functions")
    raise AssertionError  # pragma: no cover


def activation(b: Core, name: str, args, kwargs, env: Env, span) -> Act:
    """`leakyrelu(0.1)` (or a bare `leakyrelu` given to `act=`): the activation with its parameters,
    from the arguments, then the `defaults` in force for that activation kind, then the registry's."""
    kind = LAYERS[name]
    given: dict[str, Any] = {}
    if len(args) > len(kind.positional):
        extra = args[len(kind.positional)]
        b.fail("unexpected-argument", f"`{name}` takes {len(kind.positional)} positional argument"
               f"{'s' * (len(kind.positional) != 1)}", extra.span,
               help=(f"its parameters are {', '.join(f'`{p}`' for p in kind.params)}" if kind.params
                     else f"write `{name}` without arguments"))
    for p, a in zip(kind.positional, args, strict=False):
        given[p] = evaluate(b, a, env)
    for kw in kwargs:
        if kw.name not in kind.params:
            b.fail("unknown-param", f"`{name}` has no parameter `{kw.name}`", kw.span,
                   help=suggest(kw.name, kind.params) or (f"its parameters are "
                   f"{', '.join(f'`{p}`' for p in kind.params)}" if kind.params else f"`{name}` has no parameters"))
        if kw.name in given:
            b.fail("duplicate-param", f"`{kw.name}` is given twice", kw.span)
        given[kw.name] = evaluate(b, kw.value, env)
    for pname, (value, _) in env.defaults.get(name, {}).items():
        given.setdefault(pname, value)
    try:
        return Act(name, resolve_params(kind, given))
    except ParamError as err:
        b.fail("bad-param", f"`{name} {err.param}`: {err}", span, help=err.help)
    raise AssertionError  # pragma: no cover


def _call_fn(b: Core, e: ast.Call, env: Env) -> Any:
    fd = b.fns[e.name]
    fn = fd.node
    if any(name == fn.name for name, _ in b.fn_calls):
        path = " -> ".join([n for n, _ in b.fn_calls] + [fn.name])
        b.fail("recursive-function", f"function `{fn.name}` calls itself ({path})", e.name_span,
               help="a `fn` cannot call itself; write the cases out with `... if ... else ...`")
    sig = ", ".join(p.name + ("=..." if p.default is not None else "") for p in fn.params)
    if len(e.args) > len(fn.params):
        b.fail("unexpected-argument", f"function `{fn.name}` takes {len(fn.params)} arguments, got {len(e.args)}",
               e.args[len(fn.params)].span, help=f"its parameters are ({sig})")
    bound: dict[str, Any] = {}
    for p, a in zip(fn.params, e.args, strict=False):
        bound[p.name] = evaluate(b, a, env)
    names = {p.name for p in fn.params}
    for kw in e.kwargs:
        if kw.name not in names:
            b.fail("unknown-argument", f"function `{fn.name}` has no parameter `{kw.name}`", kw.span,
                   help=suggest(kw.name, names) or f"its parameters are ({sig})")
        if kw.name in bound:
            b.fail("duplicate-param", f"`{kw.name}` is given twice", kw.span)
        bound[kw.name] = evaluate(b, kw.value, env)
    inner = Env(vars={**fd.consts, **bound}, defaults=env.defaults, values=env.values, holders=env.holders,
                used=env.used)
    b.fn_count += 1
    if b.fn_count > MAX_CALLS:
        b.fail("too-large", f"the spec calls functions more than {MAX_CALLS:,} times", e.span,
               help="a function that calls another several times multiplies the work; simplify the functions")
    b.fn_calls.append((fn.name, e.span))
    try:
        for p in fn.params:
            if p.name not in bound:
                if p.default is None:
                    b.fail("missing-argument", f"function `{fn.name}` needs a value for `{p.name}`", e.span,
                           help=f"its parameters are ({sig})")
                inner.vars[p.name] = bound[p.name] = evaluate(b, p.default, inner)
        return evaluate(b, fn.body, inner)
    finally:
        b.fn_calls.pop()


def _src(e) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Num):
        return str(e.value)
    return "..."
