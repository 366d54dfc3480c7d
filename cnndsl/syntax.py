"""Front end: spec text -> cnndsl.ast.Program.

Loads grammar/cnndsl.lark once (LALR, positions propagated), runs the newline-folding postlexer, and
turns the parse tree into AST dataclasses with a separate Transformer pass (so `meta` positions are
available). Every Lark exception is converted here, at one boundary, into a Diagnostic.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import ast
from .diagnostics import CompileError, Diagnostic, Span, error


def grammar_path() -> Path:
    """The `.lark` file: shipped as package data in a wheel, `grammar/` in a source checkout."""
    try:
        from importlib.resources import files

        p = files("cnndsl.grammar") / "cnndsl.lark"
        if p.is_file():
            return Path(str(p))
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "grammar" / "cnndsl.lark"


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=False,
    )


def _tok_span(file: str, t: Token) -> Span:
    return Span(file, t.line, t.column, t.end_line, t.end_column)


@v_args(meta=True, inline=True)
class ToAst(Transformer):
    """Parse tree -> AST. One method per grammar alternative (`-> alias`)."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1, 1, 1)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _t(self, t: Token) -> Span:
        return _tok_span(self.file, t)

    # statements
    def start(self, meta, *stmts):
        return ast.Program(tuple(s for s in stmts if s is not None), self.file)

    def network(self, meta, name):
        return ast.Network(str(name), self._span(meta))

    def input(self, meta, size):
        return ast.Input(tuple(int(x) for x in size.split("x")), self._span(meta))

    def input_chain(self, meta, *elements):
        span = self._span(meta)
        ref = ast.Layer("input", (), (), False, Span(self.file, span.line, span.col, span.line, span.col + 5),
                        Span(self.file, span.line, span.col, span.line, span.col + 5))
        return ast.ChainStmt(ast.Chain((ref, *elements), span), span)

    def defaults(self, meta, kind, *kwargs):
        return ast.Defaults(str(kind), kwargs, self._span(meta), self._t(kind))

    def import_(self, meta, target):
        is_path = target.type == "STRING"
        return ast.Import(target[1:-1] if is_path else str(target), is_path, self._span(meta))

    def output(self, meta, *names):
        return ast.Output(tuple(ast.Name(str(n), self._t(n)) for n in names), self._span(meta))

    def block(self, meta, name, *rest):
        *params, body = rest
        params = tuple(p for p in params if p is not None)
        return ast.Block(str(name), params, body, self._span(meta), self._t(name))

    def param(self, meta, name, default):
        return ast.Param(str(name), default, self._span(meta))

    def assign(self, meta, name, chain):
        return ast.Assign(str(name), chain, self._span(meta), self._t(name))

    def chain_stmt(self, meta, chain):
        return ast.ChainStmt(chain, self._span(meta))

    # chains
    def chain(self, meta, *items):
        elements = tuple(items)
        return ast.Chain(elements, self._span(meta))

    def _split(self, items):
        args = tuple(a for a in items if a is not None and not isinstance(a, ast.Kwarg))
        kwargs = tuple(a for a in items if isinstance(a, ast.Kwarg))
        return args, kwargs

    def layer(self, meta, name, *items):
        args, kwargs = self._split(items)
        return ast.Layer(str(name), args, kwargs, False, self._span(meta), self._t(name))

    def call(self, meta, name, *items):
        args, kwargs = self._split(items)
        return ast.Layer(str(name), args, kwargs, True, self._span(meta), self._t(name))

    def branches(self, meta, name, *branches):
        return ast.Branches(str(name), branches, self._span(meta), self._t(name))

    def branch(self, meta, *stmts):
        return tuple(stmts)

    def body(self, meta, *stmts):
        return tuple(s for s in stmts if s is not None)

    def residual(self, meta, body):
        return ast.Residual(body, self._span(meta))

    def shortcut(self, meta, body):
        return ast.Shortcut(body, self._span(meta))

    def repeat(self, meta, count, body):
        return ast.Repeat(count, body, self._span(meta))

    def kwarg(self, meta, name, value):
        return ast.Kwarg(str(name), value, self._span(meta))

    # expressions
    def _bin(op):
        def f(self, meta, a, b):
            return ast.BinOp(op, a, b, self._span(meta))

        return f

    add, sub, mul, div = _bin("+"), _bin("-"), _bin("*"), _bin("/")

    def neg(self, meta, a):
        return ast.Neg(a, self._span(meta))

    def int(self, meta, t):
        return ast.Num(int(t), self._t(t))

    def float(self, meta, t):
        return ast.Num(float(t), self._t(t))

    def size(self, meta, t):
        return ast.Size(tuple(int(x) for x in t.split("x")), self._t(t))

    def name(self, meta, t):
        return ast.Name(str(t), self._t(t))

    def string(self, meta, t):
        return ast.Str(str(t)[1:-1], self._t(t))

    def list(self, meta, *items):
        return ast.ListLit(tuple(i for i in items if i is not None), self._span(meta))


# --- errors ------------------------------------------------------------------------------------

_READABLE = {
    "_ARROW": "`->`",
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "SIZE": "a size such as `32x32x3`",
    "STRING": 'a quoted path such as `"blocks.cnn"`',
    "_NL": "a new line",
    "$END": "the end of the file",
    "_LBRACE": "`{`",
    "_RBRACE": "`}`",
    "_LPAR": "`(`",
    "_RPAR": "`)`",
    "_LSQB": "`[`",
    "_RSQB": "`]`",
    "_COMMA": "`,`",
    "EQUAL": "`=`",
    "_VBAR": "`|`",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "STAR": "`*`",
    "SLASH": "`/`",
}


def _readable(term: str) -> str:
    if " " in term:
        return term
    if term in _READABLE:
        return _READABLE[term]
    return f"`{term.lower()}`" if term.isalpha() else term


def _expected(u: UnexpectedInput) -> str:
    terms = set(getattr(u, "expected", None) or getattr(u, "allowed", ()) or ())
    if {"NAME", "RESIDUAL", "REPEAT"} <= terms:  # the start of a chain element
        terms -= {"NAME", "RESIDUAL", "REPEAT", "SHORTCUT"}
        terms.add("a layer")
    names = sorted({_readable(t) for t in terms})
    if not names:
        return ""
    if len(names) > 6:
        names = names[:6] + ["..."]
    return "expected " + ", ".join(names)


# Common mistakes, recognised by LALR state (lark's match_examples); each maps to (message, help).
_EXAMPLES = {
    ("bad-input-shape", "`input` takes a shape written HxWxC", "write it like `input 32x32x3`"): [
        "input 32",
        "input 32, 32, 3",
        "input (32, 32, 3)",
        "input 32 x 32 x 3",
        "input",
    ],
    ("missing-layer", "expected a layer after `->`", "a chain is `layer -> layer`; remove the extra `->`"): [
        "conv f=3 n=3 -> -> relu",
        "conv f=3 n=3 ->",
        "-> relu",
    ],
    ("bad-argument", "expected an argument value after `=`", "write `name=value`, e.g. `f=3`"): [
        "conv f=",
        "conv f= -> relu",
        "conv f=, n=3",
    ],
}


def _span_at(file: str, text: str, u: UnexpectedInput) -> Span:
    if isinstance(u, UnexpectedEOF) or getattr(u, "line", -1) < 1:
        lines = text.splitlines() or [""]
        # point just past the last non-blank line
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].strip():
                return Span(file, i + 1, len(lines[i]) + 1, i + 1, len(lines[i]) + 2)
        return Span(file, 1, 1, 1, 2)
    tok = getattr(u, "token", None)
    if isinstance(tok, Token) and tok.type != "$END" and tok.end_column is not None:
        if tok.type == "_NL":  # point at the end of the line, not into the next one
            line = text.splitlines()[u.line - 1] if text.splitlines() else ""
            return Span(file, u.line, len(line) + 1, u.line, len(line) + 2)
        if tok.type.startswith("_"):  # punctuation absorbs blanks and comments: point at the symbol itself
            core = _PUNCT_CORE.match(tok.value)
            before = tok.value[: core.start(1)]
            line = tok.line + before.count("\n")
            col = (len(before) - before.rfind("\n")) if "\n" in before else tok.column + len(before)
            return Span(file, line, col, line, col + len(core.group(1)))
        return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)
    return Span(file, u.line, u.column, u.line, u.column + 1)


_PUNCT_CORE = re.compile(r"(?:[ \t\f\r\n]|#[^\n]*)*(->|[|,{}()\[\]])")


def _unclosed(text: str, file: str) -> Diagnostic | None:
    """Find the opening bracket that is never closed (for errors at end of file)."""
    stack: list[tuple[str, int, int]] = []
    pairs = {")": "(", "}": "{", "]": "["}
    for ln, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for col, ch in enumerate(code, 1):
            if ch in "({[":
                stack.append((ch, ln, col))
            elif ch in pairs:
                if stack and stack[-1][0] == pairs[ch]:
                    stack.pop()
                else:
                    return None
    if not stack:
        return None
    ch, ln, col = stack[-1]
    close = {"(": ")", "{": "}", "[": "]"}[ch]
    return error(
        "unclosed-bracket",
        f"this `{ch}` is never closed",
        Span(file, ln, col, ln, col + 1),
        help=f"add the matching `{close}`",
    )


def _syntax_diagnostic(u: UnexpectedInput, text: str, file: str) -> Diagnostic:
    span = _span_at(file, text, u)
    if isinstance(u, UnexpectedEOF) or (isinstance(u, UnexpectedToken) and u.token.type == "$END"):
        d = _unclosed(text, file)
        if d:
            return d
    try:
        label = u.match_examples(parser().parse, _EXAMPLES, use_accepts=True)
    except Exception:  # noqa: BLE001 - a failed heuristic must not hide the real error
        label = None
    if label:
        code, message, help_ = label
        return error(code, message, span, help=help_)
    if isinstance(u, UnexpectedCharacters):
        ch = text[u.pos_in_stream] if 0 <= u.pos_in_stream < len(text) else "?"
        help_ = None
        if ch == ";":
            help_ = "statements are separated by new lines; no `;` is needed"
        elif ch == ",":
            help_ = "arguments are separated by spaces (`conv f=3 n=16`), or by `,` inside `(...)`"
        elif ch == ":":
            help_ = "write arguments as `name=value`"
        elif not ch.isprintable() or ord(ch) > 127:
            return error("bad-character", f"unexpected character {ch!r} (U+{ord(ch):04X})", span,
                         help="a spec is plain text; check the file is the one you meant")
        return error("unexpected-character", f"unexpected character `{ch}`", span, help=help_)
    if isinstance(u, UnexpectedToken):
        tok = u.token
        what = _readable(tok.type) if tok.type in _READABLE and tok.type != "NAME" else f"`{tok}`"
        if tok.type == "_NL":
            what = "end of line"
        exp = _expected(u)
        before = text[: getattr(tok, "start_pos", 0) or 0].rstrip()
        if before.endswith("->"):
            return error("missing-layer", f"expected a layer after `->`, found {what}", span,
                         help="a chain is `layer -> layer -> ...`")
        return error("unexpected-token", f"unexpected {what}" + (f", {exp}" if exp else ""), span)
    return error("syntax-error", "unexpected end of file", span, help="the last statement is incomplete")


def parse(text: str, file: str = "<spec>") -> ast.Program:
    """Parse spec text into an AST; raise CompileError with one diagnostic on a syntax error."""
    try:
        tree = parser().parse(text)
    except UnexpectedInput as u:
        raise CompileError([_syntax_diagnostic(u, text, file)], {file: text}) from None
    try:
        return ToAst(file).transform(tree)
    except VisitError as e:  # lark wraps callback errors; unwrap at this boundary
        raise e.orig_exc from None
