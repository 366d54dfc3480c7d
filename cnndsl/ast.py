"""The abstract syntax tree: frozen dataclasses produced by cnndsl.syntax, each carrying its Span.

The AST is exactly what the user wrote (no defaults applied, no blocks expanded); cnndsl.ir turns it
into the layer graph.
"""

from __future__ import annotations

from .diagnostics import Span
from .records import record

# --- expressions -------------------------------------------------------------------------------


@record
class Num:
    value: int | float
    span: Span


@record
class Size:
    dims: tuple[int, ...]
    span: Span


@record
class Name:
    id: str
    span: Span


@record
class Str:
    value: str
    span: Span


@record
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@record
class BinOp:
    op: str  # + - * / // %, a comparison (== != < <= > >=), `and`, `or`
    left: Expr
    right: Expr
    span: Span


@record
class Neg:
    operand: Expr
    span: Span


@record
class Not:
    operand: Expr
    span: Span


@record
class IfExp:
    """`a if cond else b`."""

    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


@record
class Call:
    """`max(8, c // 2)`, `make_divisible(c * w)`, `leakyrelu(0.1)`: a function applied to values."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    span: Span
    name_span: Span


Expr = Num | Size | Name | Str | ListLit | BinOp | Neg | Not | IfExp | Call


@record
class Kwarg:
    name: str
    value: Expr
    span: Span  # the whole `name=value`


# --- chain elements ----------------------------------------------------------------------------


@record
class Layer:
    """`conv f=5 n=6` (call=False) or `bottleneck(64, s=2)` (call=True): a layer, block call or value."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    call: bool
    span: Span
    name_span: Span


@record
class Branches:
    """`concat { a | b | c }`: a merge kind applied to parallel branches of the current value."""

    name: str
    branches: tuple[tuple[Stmt, ...], ...]
    span: Span
    name_span: Span


@record
class Residual:
    body: tuple[Stmt, ...]
    span: Span


@record
class Shortcut:
    body: tuple[Stmt, ...]
    span: Span


@record
class Repeat:
    count: Expr
    body: tuple[Stmt, ...]
    span: Span


@record
class For:
    """`for (k, c, s) in table { ... }`: the body once per item, its names bound to the item's values."""

    names: tuple[Name, ...]
    unpack: bool  # `(k, c)` (each item is a tuple of len(names)) rather than a single name
    items: Expr
    body: tuple[Stmt, ...]
    span: Span


@record
class If:
    """`if c1 { ... } elif c2 { ... } else { ... }`: the first arm whose condition holds."""

    arms: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...] | None
    span: Span




@record
class Annotated:
    """`conv f=5 n=6 : 28x28x6`: an element and the output shape its author states (checked by the driver)."""

    element: Layer | Branches | Residual | Shortcut | Repeat | For | If
    dims: tuple[int, ...]
    span: Span
    shape_span: Span  # the `28x28x6`


Element = Layer | Branches | Residual | Shortcut | Repeat | For | If | Annotated


@record
class Chain:
    elements: tuple[Element, ...]
    span: Span


# --- statements --------------------------------------------------------------------------------


@record
class Network:
    name: str
    span: Span


@record
class Input:
    dims: tuple[int, ...]
    span: Span


@record
class Defaults:
    kind: str
    kwargs: tuple[Kwarg, ...]
    span: Span
    kind_span: Span


@record
class Import:
    target: str
    is_path: bool  # "file.cnn" (relative path) vs bare name (the bundled block library)
    span: Span


@record
class Output:
    names: tuple[Name, ...]
    span: Span


@record
class Param:
    name: str
    default: Expr | None
    span: Span


@record
class Block:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@record
class Fn:
    """`fn NAME(params) = expression`: a function of numbers, lists and words (no layers)."""

    name: str
    params: tuple[Param, ...]
    body: Expr
    span: Span
    name_span: Span


@record
class Let:
    """`let NAME = expression`: a constant (a number, a list, a word); not a tensor."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@record
class Assign:
    name: str
    chain: Chain
    span: Span
    name_span: Span


@record
class ChainStmt:
    chain: Chain
    span: Span


Stmt = Network | Input | Defaults | Import | Output | Block | Fn | Let | Assign | ChainStmt


@record
class Program:
    stmts: tuple[Stmt, ...]
    file: str
