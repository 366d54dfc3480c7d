"""The abstract syntax tree: frozen dataclasses produced by cnndsl.syntax, each carrying its Span.

The AST is exactly what the user wrote (no defaults applied, no blocks expanded); cnndsl.ir turns it
into the layer graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import Span

# --- expressions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Size:
    dims: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // %, a comparison (== != < <= > >=), `and`, `or`
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class IfExp:
    """`a if cond else b`."""

    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """`max(8, c // 2)`, `make_divisible(c * w)`, `leakyrelu(0.1)`: a function applied to values."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    span: Span
    name_span: Span


Expr = Num | Size | Name | Str | ListLit | BinOp | Neg | Not | IfExp | Call


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: Expr
    span: Span  # the whole `name=value`


# --- chain elements ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """`conv f=5 n=6` (call=False) or `bottleneck(64, s=2)` (call=True): a layer, block call or value."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    call: bool
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Branches:
    """`concat { a | b | c }`: a merge kind applied to parallel branches of the current value."""

    name: str
    branches: tuple[tuple[Stmt, ...], ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Residual:
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Shortcut:
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Repeat:
    count: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class For:
    """`for (k, c, s) in table { ... }`: the body once per item, its names bound to the item's values."""

    names: tuple[Name, ...]
    unpack: bool  # `(k, c)` (each item is a tuple of len(names)) rather than a single name
    items: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class If:
    """`if c1 { ... } elif c2 { ... } else { ... }`: the first arm whose condition holds."""

    arms: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...] | None
    span: Span


Element = Layer | Branches | Residual | Shortcut | Repeat | For | If


@dataclass(frozen=True)
class Chain:
    elements: tuple[Element, ...]
    span: Span


# --- statements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    name: str
    span: Span


@dataclass(frozen=True)
class Input:
    dims: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Defaults:
    kind: str
    kwargs: tuple[Kwarg, ...]
    span: Span
    kind_span: Span


@dataclass(frozen=True)
class Import:
    target: str
    is_path: bool  # "file.cnn" (relative path) vs bare name (the bundled block library)
    span: Span


@dataclass(frozen=True)
class Output:
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Block:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Fn:
    """`fn NAME(params) = expression`: a function of numbers, lists and words (no layers)."""

    name: str
    params: tuple[Param, ...]
    body: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Let:
    """`let NAME = expression`: a constant (a number, a list, a word); not a tensor."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Assign:
    name: str
    chain: Chain
    span: Span
    name_span: Span


@dataclass(frozen=True)
class ChainStmt:
    chain: Chain
    span: Span


Stmt = Network | Input | Defaults | Import | Output | Block | Fn | Let | Assign | ChainStmt


@dataclass(frozen=True)
class Program:
    stmts: tuple[Stmt, ...]
    file: str
