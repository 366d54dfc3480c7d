"""Front end: spec text -> cnndsl.ast.Program.

Loads grammar/cnndsl.lark once (LALR; the analysed tables are cached as JSON in the user's cache folder) and
builds the AST dataclasses, with their spans, while it parses. Every Lark exception is converted here,
at one boundary, into a Diagnostic.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .diagnostics import CompileError, Diagnostic, Span, error


def grammar_path() -> Path:
    """The `.lark` file: shipped as package data in a wheel (`cnndsl/grammar/`), `grammar/` in a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "grammar" / "cnndsl.lark"  # a plain path: importlib.resources costs `check` its import
    return packaged if packaged.is_file() else here.parent / "grammar" / "cnndsl.lark"


# NOTE: the AST is built while LALR parses (lark's internal transformer), not by a second pass over a
# parse tree: building Trees with propagate_positions and then walking them with a v_args(meta=True)
# Transformer took two thirds of the front end's time on large specs. Spans are computed here, from
# the children's spans, with the same rule as lark's propagate_positions: a node runs from the start
# of its first child to the end of its last, tokens that the tree would drop (`{`, `)`, `network`)
# included; a parenthesised expression is one child that runs from its `(` to its `)`.

_SPEC_LARK = dict(parser="lalr", lexer="contextual", maybe_placeholders=True, keep_all_tokens=True)


def _cache_file(grammar: str) -> Path | None:
    """Where the analysed grammar is kept between runs: the user's cache folder, keyed by its inputs."""
    import hashlib
    import sys

    import lark

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(root):
        return None
    key = f"{grammar}{sorted(_SPEC_LARK.items())}{lark.__version__}{sys.version_info[:2]}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    return Path(root) / "cnndsl" / f"grammar-{digest}.json"


# NOTE: the cache holds lark's own serialised tables (`memo_serialize`, which its standalone generator
# also writes out) as JSON, never a pickle: a file planted in the cache folder can at worst describe a
# wrong parser (the digest inside it must match, and anything that does not load is rebuilt), never run
# code. Tuples and dicts with non-string keys are tagged so that they come back exactly.
_DICT, _TUPLE = "\0d", "\0t"


def _to_json(v):
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: _to_json(x) for k, x in v.items()}
        return {_DICT: [[_to_json(k), _to_json(x)] for k, x in v.items()]}
    if isinstance(v, tuple):
        return {_TUPLE: [_to_json(x) for x in v]}
    if isinstance(v, list):
        return [_to_json(x) for x in v]
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    raise TypeError(f"cannot cache a {type(v).__name__}")


def _from_json(o: dict):
    if len(o) == 1 and _DICT in o:
        return {tuple(k) if isinstance(k, list) else k: x for k, x in o[_DICT]}
    if len(o) == 1 and _TUPLE in o:
        return tuple(o[_TUPLE])
    return o


def _load_cached(cache: Path) -> Lark | None:
    import json

    try:
        st = os.stat(cache)
        if not os.path.isfile(cache) or st.st_size > (4 << 20) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            return None  # not ours, or absurd: rebuild (and replace it)
        d = json.loads(cache.read_text(encoding="utf-8"), object_hook=_from_json)
        if d.get("key") != cache.stem:
            return None
        return Lark._load_from_dict(d["data"], d["memo"], transformer=_BUILDER, _plugins=_plugins())
    except Exception:  # noqa: BLE001 - no cache, or a stale or broken one: rebuild it
        return None


def _plugins() -> dict:
    """lark's classes that cnndsl replaces: the contextual lexer, made as the parse needs it (cnndsl.lexing).
    A lark without the internals it builds on keeps its own lexer: slower to start, the same tokens."""
    try:
        from .lexing import LazyContextualLexer
    except ImportError:  # pragma: no cover - tested with the lark that the test extra installs
        return {}
    return {"ContextualLexer": LazyContextualLexer}


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser, with `_AstBuilder` as its callbacks; its tables come from the cache when they can."""
    import json

    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    grammar = grammar_path().read_text(encoding="utf-8")
    cache = _cache_file(grammar)
    if cache is not None:
        p = _load_cached(cache)
        if p is not None:
            return p
    p = Lark(grammar, transformer=_BUILDER, _plugins=_plugins(), **_SPEC_LARK)
    if cache is not None:
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        try:  # written aside and renamed, so that a concurrent run never reads half a file
            data, memo = p.memo_serialize([TerminalDef, Rule])
            data["options"] = {k: v for k, v in data["options"].items()
                               if k not in ("transformer", "_plugins")}  # given at load
            text = json.dumps(_to_json({"key": cache.stem, "data": data, "memo": memo}), separators=(",", ":"))
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, cache)
        except (OSError, TypeError, ValueError):
            try:
                tmp.unlink()
            except OSError:
                pass
    return p


MAX_DIGITS = 18


class _TooBig(Exception):
    """A number too large to read: stops the parse with its diagnostic."""

    def __init__(self, diag: Diagnostic):
        self.diag = diag


class _Wrapped:
    """A value that is not an AST node but has a span: a `{ ... }` body, a `( ... )` expression."""

    __slots__ = ("value", "span")

    def __init__(self, value, span: Span):
        self.value, self.span = value, span


_VALUE_TOKENS = frozenset({"NAME", "INT", "FLOAT", "SIZE", "STRING", "COMPARE"})


def _values(children: list) -> list:
    """The children the AST keeps: values and value tokens, without punctuation, keywords, placeholders."""
    return [c.value if type(c) is _Wrapped else c for c in children
            if c is not None and not (type(c) is Token and c.type not in _VALUE_TOKENS)]


def _unwrap(c):
    return c.value if type(c) is _Wrapped else c


class _AstBuilder(Transformer):
    """Parser callbacks -> AST. One method per grammar alternative (`-> alias`); `c` is every child."""

    file = "<spec>"  # set by parse() for each text (under _LOCK)

    def _span(self, c: list) -> Span:
        first = last = None
        for x in c:
            if x is not None and (type(x) is Token or hasattr(x, "span")):
                first = x
                break
        for x in reversed(c):
            if x is not None and (type(x) is Token or hasattr(x, "span")):
                last = x
                break
        if first is None:
            return Span(self.file, 1, 1, 1, 1)
        if type(first) is Token:
            line, col = first.line, first.column
        else:
            line, col = first.span.line, first.span.col
        if type(last) is Token:
            return Span(self.file, line, col, last.end_line, last.end_column)
        return Span(self.file, line, col, last.span.end_line, last.span.end_col)

    def _t(self, t: Token) -> Span:
        return Span(self.file, t.line, t.column, t.end_line, t.end_column)

    # statements
    def start(self, c):
        return ast.Program(tuple(s for s in _values(c) if s is not None), self.file)

    def network(self, c):
        return ast.Network(str(_values(c)[0]), self._span(c))

    def input(self, c):
        tok = _values(c)[0]
        return ast.Input(tuple(self._number(tok, x) for x in tok.split("x")), self._span(c))

    def input_chain(self, c):
        span = self._span(c)
        at = Span(self.file, span.line, span.col, span.line, span.col + 5)
        ref = ast.Layer("input", (), (), False, at, at)
        return ast.ChainStmt(ast.Chain((ref, *_values(c)), span), span)

    def defaults(self, c):
        kind, *kwargs = _values(c)
        return ast.Defaults(str(kind), tuple(kwargs), self._span(c), self._t(kind))

    def import_(self, c):
        (target,) = _values(c)
        is_path = target.type == "STRING"
        return ast.Import(target[1:-1] if is_path else str(target), is_path, self._span(c))

    def output(self, c):
        return ast.Output(tuple(ast.Name(str(n), self._t(n)) for n in _values(c)), self._span(c))

    def block(self, c):
        name, *params, body = _values(c)
        return ast.Block(str(name), tuple(params), body, self._span(c), self._t(name))

    def fn(self, c):
        name, *params, body = _values(c)
        return ast.Fn(str(name), tuple(params), body, self._span(c), self._t(name))

    def let(self, c):
        name, value = _values(c)
        return ast.Let(str(name), value, self._span(c), self._t(name))

    def param(self, c):
        name, *default = _values(c)
        return ast.Param(str(name), default[0] if default else None, self._span(c))

    def assign(self, c):
        name, chain = _values(c)
        return ast.Assign(str(name), chain, self._span(c), self._t(name))

    def chain_stmt(self, c):
        (chain,) = _values(c)
        return ast.ChainStmt(chain, self._span(c))

    # chains
    def chain(self, c):
        return ast.Chain(tuple(_values(c)), self._span(c))

    def _layer(self, c, call: bool):
        name, *items = _values(c)
        args = tuple(a for a in items if not isinstance(a, ast.Kwarg))
        kwargs = tuple(a for a in items if isinstance(a, ast.Kwarg))
        return ast.Layer(str(name), args, kwargs, call, self._span(c), self._t(name))

    def layer(self, c):
        return self._layer(c, False)

    def call(self, c):
        return self._layer(c, True)

    def branches(self, c):
        name, *branches = _values(c)
        return ast.Branches(str(name), tuple(branches), self._span(c), self._t(name))

    def branch(self, c):
        return tuple(_values(c))

    def body(self, c):
        return _Wrapped(tuple(_values(c)), self._span(c))

    def residual(self, c):
        return ast.Residual(_values(c)[0], self._span(c))

    def shortcut(self, c):
        return ast.Shortcut(_values(c)[0], self._span(c))

    def repeat(self, c):
        count, body = _values(c)
        return ast.Repeat(count, body, self._span(c))

    def annotated(self, c):
        el, dims = _values(c)
        return ast.Annotated(el, tuple(int(x) for x in dims.split("x")), self._span(c), self._t(dims))

    def for_(self, c):
        *names, items, body = _values(c)
        unpack = any(type(x) is Token and x.type == "_LPAR" for x in c)
        return ast.For(tuple(ast.Name(str(n), self._t(n)) for n in names), unpack, items, body, self._span(c))

    def if_(self, c):
        vals = _values(c)
        arms = tuple((vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2))
        orelse = vals[-1] if len(vals) % 2 else None
        return ast.If(arms, orelse, self._span(c))

    def kwarg(self, c):
        name, value = _values(c)
        return ast.Kwarg(str(name), value, self._span(c))

    # expressions
    def atom(self, c):  # `( sum )`: the expression, spanning its parentheses for the enclosing node
        return _Wrapped(_unwrap(c[1]), self._span(c))

    def _bin(op):
        def f(self, c):
            a, b = _values(c)
            return ast.BinOp(op, a, b, self._span(c))

        return f

    add, sub, mul, div = _bin("+"), _bin("-"), _bin("*"), _bin("/")
    floordiv, mod, or_, and_, pow = _bin("//"), _bin("%"), _bin("or"), _bin("and"), _bin("**")

    def compare(self, c):
        a, op, b = _values(c)
        return ast.BinOp(str(op), a, b, self._span(c))

    def neg(self, c):
        return ast.Neg(_values(c)[0], self._span(c))

    def not_(self, c):
        return ast.Not(_values(c)[0], self._span(c))

    def ifexp(self, c):
        then, cond, orelse = _values(c)
        return ast.IfExp(cond, then, orelse, self._span(c))

    def tuple(self, c):
        return ast.ListLit(tuple(_values(c)), self._span(c))

    def fcall(self, c):
        name, *items = _values(c)
        args = tuple(a for a in items if not isinstance(a, ast.Kwarg))
        kwargs = tuple(a for a in items if isinstance(a, ast.Kwarg))
        return ast.Call(str(name), args, kwargs, self._span(c), self._t(name))

    def _number(self, tok: Token, text: str, kind=int):
        """A number as written, bounded where it is read: at most 18 digits, and a finite float."""
        if len(text.lstrip("0")) > MAX_DIGITS or (kind is float and not math.isfinite(float(text))):
            raise _TooBig(error("number-too-large", f"the number `{text[:30]}{'...' if len(text) > 30 else ''}` is "
                                f"too large", self._t(tok), help=f"numbers in a spec have at most {MAX_DIGITS} "
                                                                 "digits (a billion billion)"))
        return kind(text)

    def int(self, c):
        return ast.Num(self._number(c[0], str(c[0])), self._t(c[0]))

    def float(self, c):
        return ast.Num(self._number(c[0], str(c[0]), float), self._t(c[0]))

    def size(self, c):
        return ast.Size(tuple(self._number(c[0], x) for x in c[0].split("x")), self._t(c[0]))

    def name(self, c):
        return ast.Name(str(c[0]), self._t(c[0]))

    def string(self, c):
        return ast.Str(str(c[0])[1:-1], self._t(c[0]))

    def list(self, c):
        return ast.ListLit(tuple(_values(c)), self._span(c))


_BUILDER = _AstBuilder()
_LOCK = threading.Lock()


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
    "COMPARE": "a comparison",
    "PERCENT": "`%`",
    "__ANON_0": "`//`",
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
        terms -= {"NAME", "RESIDUAL", "REPEAT", "SHORTCUT", "FOR", "IF"}
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
        core = _PUNCT_CORE.match(tok.value) if tok.type.startswith("_") else None
        if core is not None:  # punctuation absorbs blanks and comments: point at the symbol itself (not `//`)
            before = tok.value[: core.start(1)]
            line = tok.line + before.count("\n")
            col = (len(before) - before.rfind("\n")) if "\n" in before else tok.column + len(before)
            return Span(file, line, col, line, col + len(core.group(1)))
        return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)
    return Span(file, u.line, u.column, u.line, u.column + 1)


_PUNCT_CORE = re.compile(r"(?:[ \t\f\r\n]|#[^\n]*(?![^\n]))*(->|[|,{}()\[\]])")  # as in the grammar


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
    with _LOCK:
        _BUILDER.file = file
        try:
            return parser().parse(text)
        except UnexpectedInput as u:
            diag = _syntax_diagnostic(u, text, file)
        except _TooBig as e:
            diag = e.diag
    raise CompileError([diag], {file: text}) from None
