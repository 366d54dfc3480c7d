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
    op: str  # + - * /
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


Expr = Num | Size | Name | Str | ListLit | BinOp | Neg


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
class Annotated:
    """`conv f=5 n=6 : 28x28x6`: an element and the output shape its author states (checked by the driver)."""

    element: Layer | Branches | Residual | Shortcut | Repeat
    dims: tuple[int, ...]
    span: Span
    shape_span: Span  # the `28x28x6`


Element = Layer | Branches | Residual | Shortcut | Repeat | Annotated


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
class Assign:
    name: str
    chain: Chain
    span: Span
    name_span: Span


@dataclass(frozen=True)
class ChainStmt:
    chain: Chain
    span: Span


Stmt = Network | Input | Defaults | Import | Output | Block | Assign | ChainStmt


@dataclass(frozen=True)
class Program:
    stmts: tuple[Stmt, ...]
    file: str
